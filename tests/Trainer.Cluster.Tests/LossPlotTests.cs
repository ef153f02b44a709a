using System.Buffers.Binary;
using System.Xml.Linq;
using Trainer.Client;
using Trainer.Core;

namespace Trainer.Cluster.Tests;

/// <summary>Drawing loss series (ScottPlot) into PNG and SVG files; the SVG is read back as XML.</summary>
public sealed class LossPlotTests
{
    private static readonly LossSeries First = new("job-a", [1, 2, 3, 4, 5], [9, 7, 4, 2, 1], []);
    private static readonly LossSeries Second = new("b.log", [1, 2, 3, 4, 5, 6, 7], [8, double.NaN, 5, 3, 2, 1.5, 1], []);

    [Fact]
    public void Png_HasThePngSignature_AndTheSizeAsked()
    {
        var file = new PlotFile(Path.Combine(Cli.TempFolder(), "loss.png"), PlotFormat.Png);

        LossPlot.Save([First, Second], file, logY: false);

        var bytes = File.ReadAllBytes(file.Path);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        Assert.Equal(LossPlot.Width, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
        Assert.Equal(LossPlot.Height, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
        Assert.InRange(bytes.Length, 10_000, 1_000_000);
    }

    [Fact]
    public void Svg_HasOneLinePerSeriesInItsColour_ThroughEachFinitePoint_WithAxisLabelsAndLegend()
    {
        var svg = SaveSvg([First, Second], logY: false);

        Assert.Equal(5, PointsOfLine(svg, 0));
        Assert.Equal(6, PointsOfLine(svg, 1));
        var texts = Texts(svg).ToHashSet();
        Assert.Superset(new HashSet<string> { "step", "loss", "job-a", "b.log" }, texts);
        Assert.DoesNotContain("accuracy", texts);
    }

    [Fact]
    public void LogY_LabelsPowersOfTen_AndLeavesOutLossesAtOrBelowZero()
    {
        var series = new LossSeries("job-a", [1, 2, 3, 4, 5], [1000, 100, 0, 10, 1.5], []);

        var svg = SaveSvg([series], logY: true);

        Assert.Equal(4, PointsOfLine(svg, 0));
        Assert.Superset(new HashSet<string> { "loss (log scale)", "10", "100", "1000" }, Texts(svg).ToHashSet());
    }

    [Fact]
    public void Evaluations_AddTheirLossAndAnAccuracyAxisOnTheRight()
    {
        var series = First with { Evals = [new EvalPoint(2, 1, "test", 7.5, 0.25), new EvalPoint(4, 2, "test", 2.5, 0.75)] };

        var svg = SaveSvg([series], logY: false);

        Assert.Superset(new HashSet<string> { "accuracy", "job-a test loss", "job-a test accuracy" }, Texts(svg).ToHashSet());
        // In the series' colour: the training line, the evaluation loss and the accuracy, then their three legend samples.
        Assert.Equal([5, 2, 2, 2, 2, 2], LinesIn(svg, LossPlot.ColorOf(0).ToHex()));
    }

    [Fact]
    public void ASingleEvaluation_GetsAnAccuracyAxisFrom0To1()
    {
        var series = First with { Evals = [new EvalPoint(4, 1, "test", 2.5, 0.8435)] };

        var texts = Texts(SaveSvg([series], logY: false));

        // Ticks of 0 to 1 on the accuracy axis (its label, then its ticks), not the value plus and minus one (-0.2 to 1.8).
        var ticks = texts.SkipWhile(t => t != "accuracy").Skip(1).TakeWhile(t => t != "job-a").ToArray();
        Assert.Equal(("0", "1"), (ticks[0], ticks[^1]));
    }

    [Fact]
    public void ASeriesWithoutAFiniteLoss_IsRefused_AndNothingIsWritten()
    {
        var file = new PlotFile(Path.Combine(Cli.TempFolder(), "loss.svg"), PlotFormat.Svg);
        var diverged = new LossSeries("job-d", [1], [double.NaN], []);

        var e = Assert.Throws<SpecException>(() => LossPlot.Save([First, diverged], file, logY: false));

        Assert.Equal("source: 'job-d' is not allowed; none of its losses is finite; nothing was plotted.", e.Message);
        Assert.False(File.Exists(file.Path));
    }

    private static XDocument SaveSvg(LossSeries[] series, bool logY)
    {
        var file = new PlotFile(Path.Combine(Cli.TempFolder(), "loss.svg"), PlotFormat.Svg);
        LossPlot.Save(series, file, logY);
        return XDocument.Load(file.Path);
    }

    /// <summary>The number of points of the longest path drawn in series <paramref name="index"/>'s colour: its loss line.</summary>
    internal static int PointsOfLine(XDocument svg, int index) => LinesIn(svg, LossPlot.ColorOf(index).ToHex()).Max();

    /// <summary>The point counts (moves and line-tos) of the paths stroked in <paramref name="color"/>, in drawing order.</summary>
    internal static IEnumerable<int> LinesIn(XDocument svg, string color) =>
        svg.Descendants(Svg + "path")
            .Where(p => (string?)p.Attribute("stroke") == color && (string?)p.Attribute("fill") == "none")
            .Select(p => ((string?)p.Attribute("d") ?? "").Count(c => c is 'M' or 'L'));

    internal static string[] Texts(XDocument svg) => [.. svg.Descendants(Svg + "text").Select(t => t.Value.Trim())];

    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";
}
