using System.Globalization;
using Trainer.Client;
using Trainer.Core;

namespace Trainer.Cluster.Tests;

/// <summary>Reading the losses and evaluations of a `--json` log, apart from drawing them.</summary>
public sealed class LossLogReaderTests
{
    [Fact]
    public void AHandWrittenLog_GivesItsStepsLossesAndEvaluationsExactly()
    {
        var path = Log("run.log",
            """{"event":"step","step":1,"loss":2.5}""",
            """{"event":"step","step":2,"loss":1.25}""",
            """{"event":"eval","step":2,"epoch":1,"split":"test","loss":1.5,"accuracy":0.625}""",
            """{"event":"step","step":3,"loss":null}""",
            """{"event":"step","step":4,"loss":0.1}""",
            """{"event":"eval","step":4,"epoch":2,"split":"test","loss":0.75,"accuracy":0.875}""",
            """{"event":"completed","job":"job-0123456789ab","steps":4,"final_loss":0.1,"seconds":0.5,"steps_per_second":8,"optimizer":"sgd"}""");

        var series = LossLogReader.Read(path);

        Assert.Equal("run.log", series.Name);
        Assert.Equal([1, 2, 3, 4], series.Steps);
        Assert.Equal([2.5, 1.25, double.NaN, 0.1], series.Losses);
        Assert.Equal([new EvalPoint(2, 1, "test", 1.5, 0.625), new EvalPoint(4, 2, "test", 0.75, 0.875)], series.Evals);
    }

    [Fact]
    public async Task TheLogOfTrainJson_ReadsBackTheSingleProcessLosses()
    {
        var (code, output, err) = await Cli.RunAsync("train", "--model", "20-8-3", "--batch", "13", "--steps", "9", "--workers", "3", "--seed", "7", "--lr", "1e-3", "--json");
        Assert.True(code == 0, err);
        var path = Log("train.jsonl", output.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        var series = LossLogReader.Read(path);

        Assert.Equal(Enumerable.Range(1, 9), series.Steps);
        Assert.Equal(Jobs.Local(Jobs.Small(workers: 3, steps: 9)).Losses, series.Losses);
        Assert.Empty(series.Evals);
    }

    [Fact]
    public void AStepAtOrBeforeTheLastOne_StartsTheHistoryOverFromThere()
    {
        var path = Log("replayed.log", Steps((1, 5), (2, 4), (3, 3), (2, 4.5), (3, 3.5), (4, 2)));

        var series = LossLogReader.Read(path);

        Assert.Equal([1, 2, 3, 4], series.Steps);
        Assert.Equal([5, 4.5, 3.5, 2], series.Losses);
    }

    [Fact]
    public void LinesThatAreNotJsonObjects_AreSkipped_AndSoIsAnUnfinishedLastLine()
    {
        var path = Path.Combine(Cli.TempFolder(), "mixed.log");
        File.WriteAllText(path, "job job-1 on embedded silo\n" + string.Join("\n", Steps((1, 3), (2, 2))) + "\ntrainer: the cluster did not answer; retrying\n{\"event\":\"step\",\"st");

        var series = LossLogReader.Read(path);

        Assert.Equal([1, 2], series.Steps);
        Assert.Equal([3.0, 2.0], series.Losses);
    }

    [Fact]
    public void AMalformedLine_IsRefused_NamingTheFileAndLine()
    {
        var path = Log("broken.log", """{"event":"step","step":1,"loss":3}""", """{"event":"step","step":2,"loss":"low"}""", """{"event":"step","step":3,"loss":1}""");

        var e = Assert.Throws<SpecException>(() => LossLogReader.Read(path));

        Assert.Equal($"source: '{path}:2' is not allowed; its \"loss\" is not a number; allowed: the JSON lines of `trainer train --json` or `trainer watch --json`.", e.Message);
    }

    [Fact]
    public void ALogWithoutStepEvents_IsRefused()
    {
        var path = Log("empty.log", """{"event":"submitted","job":"job-0123456789ab"}""");

        var e = Assert.Throws<SpecException>(() => LossLogReader.Read(path));

        Assert.Equal("source", e.Field);
        Assert.Contains("it holds no step events", e.Message);
    }

    [Fact]
    public void AMissingFile_IsRefused()
    {
        var path = Path.Combine(Cli.TempFolder(), "nothing.log");

        var e = Assert.Throws<SpecException>(() => LossLogReader.Read(path));

        Assert.Equal($"source: '{path}' is not allowed; no such file; pass a log written by `trainer train --json` or `trainer watch --json`, or a job id with --gateway.", e.Message);
    }

    /// <summary>A log file of these lines, each ended by a newline, in a new folder.</summary>
    internal static string Log(string name, params string[] lines)
    {
        var path = Path.Combine(Cli.TempFolder(), name);
        File.WriteAllText(path, string.Concat(lines.Select(l => l + "\n")));
        return path;
    }

    internal static string[] Steps(params (int Step, double Loss)[] steps) =>
        [.. steps.Select(s => $"{{\"event\":\"step\",\"step\":{s.Step},\"loss\":{s.Loss.ToString("R", CultureInfo.InvariantCulture)}}}")];
}
