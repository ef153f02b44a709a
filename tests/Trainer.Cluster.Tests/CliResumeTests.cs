using System.Globalization;
using System.Text.RegularExpressions;
using Trainer.Core.Optim;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `trainer train --resume JOB` through the real command line, against a silo on loopback TCP in this
/// process (a job outlives the command that started it only on a running cluster).
/// </summary>
public sealed partial class CliResumeTests : IAsyncLifetime
{
    private LoopbackSilo _silo = null!;
    private string _gateway = null!;

    private static readonly string[] Job = ["--model", "20-8-3", "--batch", "13", "--workers", "2", "--seed", "7", "--lr", "1e-3"];

    public async ValueTask InitializeAsync()
    {
        _silo = await LoopbackSilo.StartAsync(TestContext.Current.CancellationToken);
        _gateway = _silo.Gateway;
    }

    public ValueTask DisposeAsync() => _silo.DisposeAsync();

    [Fact]
    public async Task TrainResume_ContinuesAFinishedJob_ToTheLongerRunsFinalLoss()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. Job, "--optimizer", "adam", "--steps", "6", "--gateway", _gateway]);
        Assert.True(code == 0, err);
        var first = JobIdPattern().Match(output).Groups[1].Value;

        (code, output, err) = await Cli.RunAsync(["train", .. Job, "--optimizer", "adam", "--steps", "15", "--resume", first, "--gateway", _gateway]);

        Assert.True(code == 0, err);
        Assert.Contains($"; resumed from {first} at step 6", output);
        var expected = Jobs.Local(Jobs.Small(workers: 2, steps: 15) with { Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam } });
        Assert.Contains($"final loss {expected.Losses[^1].ToString("G10", CultureInfo.InvariantCulture)} after 15 steps", output);
        Assert.DoesNotContain("step 1: loss", output);
    }

    [Fact]
    public async Task ABadResume_ExitsWith2_NamingResume()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. Job, "--optimizer", "adam", "--steps", "6", "--gateway", _gateway]);
        Assert.True(code == 0, err);
        var first = JobIdPattern().Match(output).Groups[1].Value;

        (code, _, err) = await Cli.RunAsync(["train", .. Job, "--optimizer", "sgd", "--steps", "15", "--resume", first, "--gateway", _gateway]);
        Assert.Equal(2, code);
        Assert.Contains("trainer: error: resume: the job to resume has optimizer adam; this one sgd", err);

        (code, _, err) = await Cli.RunAsync(["submit", .. Job, "--optimizer", "adam", "--resume", "job-nonexistent", "--gateway", _gateway]);
        Assert.Equal(2, code);
        Assert.Contains("trainer: error: resume: no job with id 'job-nonexistent' is known", err);
    }

    [GeneratedRegex(@"^job (\S+) on ", RegexOptions.Multiline)]
    private static partial Regex JobIdPattern();
}
