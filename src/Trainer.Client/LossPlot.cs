using System.Globalization;
using ScottPlot;
using Trainer.Core;

namespace Trainer.Client;

/// <summary>
/// Draws loss against step, one line per <see cref="LossSeries"/> (legend: its name), and, when a
/// series has evaluations, their loss on the same axis and their accuracy on a right-hand axis, in
/// the series' colour with markers (circles and squares for the test set, triangles for the validation
/// set). Non-finite losses are left out, and with a log scale so are
/// losses at or below 0 (a log has no place for them); a series left with no point is refused.
/// </summary>
internal static class LossPlot
{
    public const int Width = 900;
    public const int Height = 540;

    /// <summary>The colour of series <paramref name="index"/>, for its line, its evaluations and the legend.</summary>
    public static Color ColorOf(int index) => new ScottPlot.Palettes.Category10().GetColor(index);

    /// <summary>Renders in memory first, so a failure leaves no file behind.</summary>
    public static void Save(IReadOnlyList<LossSeries> series, PlotFile file, bool logY)
    {
        var plot = Build(series, logY);
        byte[] bytes = file.Format == PlotFormat.Png
            ? plot.GetImageBytes(Width, Height, ImageFormat.Png)
            : System.Text.Encoding.UTF8.GetBytes(plot.GetSvgXml(Width, Height));
        File.WriteAllBytes(file.Path, bytes);
    }

    private static Plot Build(IReadOnlyList<LossSeries> series, bool logY)
    {
        var plot = new Plot();
        for (int i = 0; i < series.Count; i++)
        {
            var s = series[i];
            var color = ColorOf(i);
            var (xs, ys) = Points(s.Steps, s.Losses, logY);
            if (xs.Length == 0)
                throw new SpecException(LossLogReader.Field, s.Name, logY
                    ? "none of its losses is finite and above 0, so none has a place on a log scale; nothing was plotted"
                    : "none of its losses is finite; nothing was plotted");
            var line = plot.Add.SignalXY(xs, ys, color);
            line.LegendText = s.Name;
            line.LineWidth = 1.5f;
            foreach (var split in s.Evals.GroupBy(e => e.Split))
            {
                bool validation = split.Key == Trainer.Core.Training.HeldOutEvaluation.ValidationSplit;
                var (evalXs, evalLosses) = Points([.. split.Select(e => e.Step)], [.. split.Select(e => e.Loss)], logY);
                var evalLoss = plot.Add.ScatterLine(evalXs, evalLosses, color);
                evalLoss.MarkerShape = validation ? MarkerShape.FilledTriangleUp : MarkerShape.FilledCircle;
                evalLoss.MarkerSize = 6;
                evalLoss.LegendText = $"{s.Name} {split.Key} loss";
                var (accXs, accuracies) = Points([.. split.Select(e => e.Step)], [.. split.Select(e => e.Accuracy)], logY: false);
                var accuracy = plot.Add.ScatterLine(accXs, accuracies, color);
                // NOTE: markers, not a dash pattern, tell accuracy apart: Skia's SVG canvas cannot draw
                // dashes and says so on stdout, which would land in the CLI's output.
                accuracy.MarkerShape = validation ? MarkerShape.OpenTriangleUp : MarkerShape.OpenSquare;
                accuracy.MarkerSize = 7;
                accuracy.Axes.YAxis = plot.Axes.Right;
                accuracy.LegendText = $"{s.Name} {split.Key} accuracy";
                plot.Axes.Right.Label.Text = "accuracy";
            }
        }
        plot.XLabel("step");
        plot.YLabel(logY ? "loss (log scale)" : "loss");
        if (plot.Axes.Right.Label.Text == "accuracy")
        {
            // An accuracy is a fraction: its axis is 0 to 1 whatever the points (a single evaluation's would be its value ± 1).
            plot.Axes.AutoScale();
            plot.Axes.SetLimitsY(0, 1, plot.Axes.Right);
        }
        if (logY) plot.Axes.Left.TickGenerator = LogTicks();
        // Beside the data, not over it: loss curves fill the upper left and accuracy the upper right.
        plot.ShowLegend(Edge.Bottom);
        return plot;
    }

    /// <summary>The finite points, with y as log10 for a log scale (ScottPlot 5 draws log scales as log-transformed data).</summary>
    private static (double[] Xs, double[] Ys) Points(int[] steps, double[] values, bool logY)
    {
        var xs = new List<double>(steps.Length);
        var ys = new List<double>(steps.Length);
        for (int i = 0; i < steps.Length; i++)
        {
            double y = values[i];
            if (!double.IsFinite(y) || (logY && y <= 0)) continue;
            xs.Add(steps[i]);
            ys.Add(logY ? Math.Log10(y) : y);
        }
        return ([.. xs], [.. ys]);
    }

    /// <summary>Major ticks at powers of ten labelled with their value, minor ticks between them.</summary>
    private static ScottPlot.TickGenerators.NumericAutomatic LogTicks() => new()
    {
        MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
        IntegerTicksOnly = true,
        LabelFormatter = y => Math.Pow(10, y).ToString("G6", CultureInfo.InvariantCulture),
    };
}
