using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Trainer.Client;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `--progress`: a live bar on a terminal (or when forced), the plain sampled lines when the output
/// is redirected, JSON lines with --json whatever --progress says.
/// </summary>
public sealed partial class CliProgressTests
{
    private static readonly string[] SmallJob = ["--model", "20-8-3", "--batch", "13", "--workers", "3", "--seed", "7", "--lr", "1e-3"];

    [Fact]
    public async Task RedirectedOutput_ByDefault_IsTheHeaderTheSampledStepLinesAndTheSummary_WithoutAnsiCodes()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. SmallJob, "--steps", "20"]);

        Assert.True(code == 0, err);
        var expected = Jobs.Local(Jobs.Small(workers: 3, steps: 20)).Losses;
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("job job-", lines[0]);
        int[] sampled = [1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20];
        Assert.Equal(sampled.Select(s => $"step {s}: loss {G10(expected[s - 1])}"), lines[1..^1]);
        Assert.StartsWith($"completed: job job-", lines[^1]);
        Assert.Contains($"final loss {G10(expected[^1])} after 20 steps", lines[^1]);
        Assert.DoesNotContain("\u001b", output);
    }

    [Fact]
    public async Task ProgressPlain_GivesTheSameLinesAsRedirectedOutput()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. SmallJob, "--steps", "20", "--progress", "plain"]);

        Assert.True(code == 0, err);
        var expected = Jobs.Local(Jobs.Small(workers: 3, steps: 20)).Losses;
        Assert.Equal(11, output.Split('\n').Count(l => l.StartsWith("step ", StringComparison.Ordinal)));
        Assert.Contains($"step 20: loss {G10(expected[^1])}\n", output);
    }

    [Fact]
    public async Task ProgressBar_DrawsTheLiveDisplay_EndingAtTheLastStepWithItsLossRateAndEta_ThenTheSummary()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. SmallJob, "--steps", "6", "--progress", "bar"]);

        Assert.True(code == 0, err);
        var expected = Jobs.Local(Jobs.Small(workers: 3, steps: 6)).Losses;
        Assert.Contains("\u001b[", output);
        Assert.Matches(FinalBar(expected[^1].ToString("G6", CultureInfo.InvariantCulture)), AnsiCodes().Replace(output, ""));
        Assert.DoesNotContain("step 1: loss", output);
        Assert.Contains($"completed: job job-", output);
        Assert.Contains($"final loss {G10(expected[^1])} after 6 steps", output);
    }

    [Fact]
    public async Task Json_WritesJsonLinesOnly_EvenWithProgressBar()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. SmallJob, "--steps", "4", "--progress", "bar", "--json"]);

        Assert.True(code == 0, err);
        var events = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("event").GetString());
        Assert.Equal(["step", "step", "step", "step", "completed"], events);
    }

    [Theory]
    [InlineData("auto", false, false, typeof(PlainProgress))]
    [InlineData("plain", false, true, typeof(PlainProgress))]
    [InlineData("bar", false, false, typeof(LiveProgress))]
    [InlineData("bar", true, true, typeof(JsonProgress))]
    [InlineData("auto", true, false, typeof(JsonProgress))]
    public void TheDisplay_FollowsTheModeJsonAndWhetherTheOutputIsATerminal(string mode, bool json, bool terminal, Type expected)
    {
        var reporter = ProgressReporters.For(ProgressReporters.ParseMode(mode), json, new StringWriter(), terminal);

        Assert.IsType(expected, reporter);
    }

    [Fact]
    public async Task AnUnknownMode_ExitsWith2_NamingWhatIsAllowed_BeforeAnyJobStarts()
    {
        var (code, output, err) = await Cli.RunAsync("train", "--progress", "fancy");

        Assert.Equal(2, code);
        Assert.Equal("trainer: error: progress: 'fancy' is not allowed; allowed: auto (a live bar when the output is a terminal, else plain lines), bar, plain.", err.TrimEnd());
        Assert.Equal("", output);
    }

    [Fact]
    public async Task AMisspeltProgressOption_SuggestsIt()
    {
        var (code, _, err) = await Cli.RunAsync("watch", "job-1", "--progres", "bar");

        Assert.Equal(2, code);
        Assert.Equal("trainer: error: unknown option '--progres'; did you mean '--progress'?", err.TrimEnd());
    }

    [GeneratedRegex(@"\u001b\[[0-9;?]*[A-Za-z]")]
    private static partial Regex AnsiCodes();

    private static string G10(double value) => value.ToString("G10", CultureInfo.InvariantCulture);

    // The rate is left out on a terminal too narrow for the whole line (80 columns, the width of redirected output).
    private static Regex FinalBar(string loss) =>
        new($@"100% step 6/6  loss {Regex.Escape(loss)}  (\d+\.\d steps/s  )?elapsed \d+:\d\d:\d\d  ETA 0:00:00");
}
