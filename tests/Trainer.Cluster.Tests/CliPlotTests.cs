using System.Xml.Linq;
using Trainer.Client;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `trainer plot` of --json logs and `train --plot`, without a cluster: what it writes, and that bad
/// input exits with 2 naming the field, the value and what is allowed, with nothing written.
/// </summary>
public sealed class CliPlotTests
{
    [Fact]
    public async Task TwoLogs_GiveAnSvgWithALinePerLog_AndTheCommandSaysWhatItWrote()
    {
        var a = LossLogReaderTests.Log("a.log", LossLogReaderTests.Steps((1, 4), (2, 3), (3, 2.5)));
        var b = LossLogReaderTests.Log("b.log", LossLogReaderTests.Steps((1, 5), (2, 2), (3, 1), (4, 0.5)));
        var svg = Path.Combine(Cli.TempFolder(), "both.svg");

        var (code, output, err) = await Cli.RunAsync("plot", a, b, "--out", svg);

        Assert.True(code == 0, err);
        Assert.Equal($"wrote {svg}: loss against step for a.log, b.log", output.TrimEnd());
        var document = XDocument.Load(svg);
        Assert.Equal(3, LossPlotTests.PointsOfLine(document, 0));
        Assert.Equal(4, LossPlotTests.PointsOfLine(document, 1));
        Assert.Contains("a.log", LossPlotTests.Texts(document));
        Assert.Contains("b.log", LossPlotTests.Texts(document));
    }

    [Fact]
    public async Task TwoLogsOfTheSameName_AreToldApartInTheLegendByTheirPaths()
    {
        var a = LossLogReaderTests.Log("run.log", LossLogReaderTests.Steps((1, 4), (2, 3)));
        var b = LossLogReaderTests.Log("run.log", LossLogReaderTests.Steps((1, 5), (2, 2)));
        var svg = Path.Combine(Cli.TempFolder(), "same.svg");

        var (code, output, err) = await Cli.RunAsync("plot", a, b, "--out", svg);

        Assert.True(code == 0, err);
        Assert.Equal($"wrote {svg}: loss against step for run.log, {b}", output.TrimEnd());
    }

    [Fact]
    public void ByDefault_ThePlotIsLossPng_OnAStepAxis_WithALinearLossAxis()
    {
        var parsed = new Commands(TextWriter.Null, TextWriter.Null).Build().Parse(["plot", "run.log"]);

        Assert.Empty(parsed.Errors);
        Assert.Equal("loss.png", parsed.GetValue(CliOptions.PlotOut));
        Assert.Equal("step", parsed.GetValue(CliOptions.PlotX));
        Assert.False(parsed.GetValue(CliOptions.LogY));
    }

    [Theory]
    [InlineData("out", "loss.jpg", "allowed: a file name ending in .png or .svg", "--out", "loss.jpg")]
    [InlineData("out", "loss", "allowed: a file name ending in .png or .svg", "--out", "loss")]
    [InlineData("x", "epoch", "allowed: step (a job's losses are per step; its eval events carry their epoch)", "--x", "epoch")]
    public async Task ABadOption_ExitsWith2_NamingFieldValueAndWhatIsAllowed_AndWritesNothing(string field, string value, string allowed, params string[] options)
    {
        var log = LossLogReaderTests.Log("run.log", LossLogReaderTests.Steps((1, 4), (2, 3)));
        var folder = Path.GetDirectoryName(log)!;

        var (code, output, err) = await Cli.RunAsync(["plot", log, .. options]);

        Assert.Equal(2, code);
        Assert.Equal($"trainer: error: {field}: '{value}' is not allowed; {allowed}.", err.TrimEnd());
        Assert.Equal("", output);
        Assert.Equal([log], Directory.GetFiles(folder));
    }

    [Fact]
    public async Task AnOutFolderThatDoesNotExist_ExitsWith2_NamingIt()
    {
        var log = LossLogReaderTests.Log("run.log", LossLogReaderTests.Steps((1, 4)));
        var missing = Path.Combine(Cli.TempFolder(), "no", "such");

        var (code, _, err) = await Cli.RunAsync("plot", log, "--out", Path.Combine(missing, "loss.png"));

        Assert.Equal(2, code);
        Assert.Contains($"its folder {missing} does not exist", err);
    }

    [Fact]
    public async Task AMissingLog_ExitsWith2_AndNothingIsWritten()
    {
        var good = LossLogReaderTests.Log("good.log", LossLogReaderTests.Steps((1, 4)));
        var missing = Path.Combine(Cli.TempFolder(), "missing.log");
        var svg = Path.Combine(Cli.TempFolder(), "loss.svg");

        var (code, _, err) = await Cli.RunAsync("plot", good, missing, "--out", svg);

        Assert.Equal(2, code);
        Assert.StartsWith($"trainer: error: source: '{missing}' is not allowed; no such file;", err);
        Assert.False(File.Exists(svg));
    }

    [Fact]
    public async Task ALogWithoutStepEvents_ExitsWith2_AndNothingIsWritten()
    {
        var log = LossLogReaderTests.Log("submit.log", """{"event":"submitted","job":"job-0123456789ab"}""");
        var svg = Path.Combine(Cli.TempFolder(), "loss.svg");

        var (code, _, err) = await Cli.RunAsync("plot", log, "--out", svg);

        Assert.Equal(2, code);
        Assert.Contains($"source: '{log}' is not allowed; it holds no step events", err);
        Assert.False(File.Exists(svg));
    }

    [Fact]
    public async Task AJobIdWithoutAGateway_ExitsWith2_SayingReadingAJobNeedsOne()
    {
        Assert.SkipWhen(Environment.GetEnvironmentVariable("TRAINER_GATEWAY") is { Length: > 0 }, "TRAINER_GATEWAY is set");

        var (code, _, err) = await Cli.RunAsync("plot", "job-0123456789ab", "--out", Path.Combine(Cli.TempFolder(), "loss.png"));

        Assert.Equal(2, code);
        Assert.Equal("trainer: error: source: 'job-0123456789ab' is not allowed; there is no such file, and reading a job needs --gateway host:port or TRAINER_GATEWAY (the cluster that runs it).", err.TrimEnd());
    }

    [Fact]
    public async Task TrainPlot_WritesThePngOfTheRun_AndSaysSo()
    {
        var png = Path.Combine(Cli.TempFolder(), "run.png");

        var (code, output, err) = await Cli.RunAsync("train", "--model", "20-8-3", "--batch", "13", "--steps", "5", "--workers", "2", "--plot", png);

        Assert.True(code == 0, err);
        Assert.EndsWith($"wrote plot to {png}", output.TrimEnd());
        Assert.Equal("PNG", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(png), 1, 3));
    }

    [Fact]
    public async Task TrainWithABadPlotFile_ExitsWith2_BeforeAnyJobStarts()
    {
        var (code, output, err) = await Cli.RunAsync("train", "--steps", "5", "--plot", "loss.pdf");

        Assert.Equal(2, code);
        Assert.Equal("trainer: error: plot: 'loss.pdf' is not allowed; allowed: a file name ending in .png or .svg.", err.TrimEnd());
        Assert.Equal("", output);
    }

    [Theory]
    [InlineData("unknown command 'plto'; did you mean 'plot'?", "plto", "run.log")]
    [InlineData("unknown option '--lgo-y'; did you mean '--log-y'?", "plot", "run.log", "--lgo-y")]
    [InlineData("unknown option '--ot'; did you mean '--out'?", "plot", "run.log", "--ot", "x.png")]
    [InlineData("unknown option '--plto'; did you mean '--plot'?", "train", "--plto", "x.png")]
    public async Task AMisspeltName_IsAnsweredWithTheNearest(string message, params string[] args)
    {
        var (code, output, err) = await Cli.RunAsync(args);

        Assert.Equal(2, code);
        Assert.Equal($"trainer: error: {message}", err.TrimEnd());
        Assert.Equal("", output);
    }

    [Fact]
    public async Task NoSource_IsNamedInTheSpecShape()
    {
        var (code, _, err) = await Cli.RunAsync("plot");

        Assert.Equal(2, code);
        Assert.Equal("trainer: error: source: '(none)' is not allowed; allowed: a job id (with --gateway) or a log written by `trainer train --json` or `trainer watch --json`, e.g. trainer plot job-0123456789ab.", err.TrimEnd());
    }

    [Theory]
    [InlineData("plot", "--out", "[default: loss.png]")]
    [InlineData("plot", "--log-y", "[default: linear]")]
    [InlineData("plot", "--x", "[default: step]")]
    [InlineData("plot", "--gateway", "[needed only for job ids; default: TRAINER_GATEWAY]")]
    [InlineData("train", "--plot", "[default: no plot]")]
    [InlineData("train", "--progress", "[default: auto]")]
    [InlineData("watch", "--progress", "[default: auto]")]
    public async Task EveryNewOption_IsInTheHelpWithItsDefault(string command, string option, string shown)
    {
        var (code, output, _) = await Cli.RunAsync(command, "--help");

        Assert.Equal(0, code);
        // The option's line and the lines its description wraps onto (indented, not starting with a dash).
        var lines = output.Split('\n').SkipWhile(l => !l.TrimStart().StartsWith(option + " ", StringComparison.Ordinal)).ToArray();
        var entry = lines.Take(1).Concat(lines.Skip(1).TakeWhile(l => l.StartsWith(' ') && l.Trim().Length > 0 && !l.TrimStart().StartsWith('-')));
        Assert.Contains(shown, string.Join(" ", entry.Select(l => l.Trim())));
    }
}
