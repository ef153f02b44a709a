using System.Text.RegularExpressions;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `submit` leaves the id alone on stdout and says on stderr how to follow and stop the job;
/// `cancel` returns once the job has stopped and says where. Against a silo on loopback TCP.
/// </summary>
public sealed partial class CliSubmitCancelTests : IAsyncLifetime
{
    private LoopbackSilo _silo = null!;

    // Long enough that it is still running when the test cancels it.
    private static readonly string[] LongJob = ["--model", "20-8-3", "--batch", "13", "--workers", "2", "--steps", "10000000"];

    public async ValueTask InitializeAsync() => _silo = await LoopbackSilo.StartAsync(TestContext.Current.CancellationToken);

    public ValueTask DisposeAsync() => _silo.DisposeAsync();

    [Fact]
    public async Task Submit_PrintsOnlyTheIdOnStdout_AndHowToFollowAndStopItOnStderr()
    {
        var (code, output, err) = await Cli.RunAsync(["submit", .. LongJob, "--gateway", _silo.Gateway]);

        Assert.True(code == 0, err);
        var id = output.TrimEnd();
        Assert.Matches(JobId(), id);
        Assert.Contains($"follow it: trainer watch {id} --gateway {_silo.Gateway}", err);
        Assert.Contains($"stop it:   trainer cancel {id} --gateway {_silo.Gateway}", err);
        await Cli.RunAsync("cancel", id, "--gateway", _silo.Gateway);
    }

    [Fact]
    public async Task Cancel_ReturnsOnceTheJobHasStopped_AndPrintsTheStepItStoppedAfter()
    {
        var (_, submitted, _) = await Cli.RunAsync(["submit", .. LongJob, "--gateway", _silo.Gateway]);
        var id = submitted.TrimEnd();

        var (code, output, err) = await Cli.RunAsync("cancel", id, "--gateway", _silo.Gateway);

        Assert.True(code == 0, err);
        var stopped = Regex.Match(output, $@"^{id} cancelled after step (\d+)$", RegexOptions.Multiline);
        Assert.True(stopped.Success, output);
        var (_, status, _) = await Cli.RunAsync("status", id, "--gateway", _silo.Gateway);
        Assert.Contains($"{id}  cancelled  step {stopped.Groups[1].Value}/10000000", status);
    }

    [Fact]
    public async Task CancellingAJobThatHasEnded_SaysSoWithItsState()
    {
        var (code, trained, err) = await Cli.RunAsync("train", "--model", "20-8-3", "--workers", "1", "--steps", "3", "--gateway", _silo.Gateway);
        Assert.True(code == 0, err);
        var id = Regex.Match(trained, @"^job (\S+) on ", RegexOptions.Multiline).Groups[1].Value;

        (code, var output, err) = await Cli.RunAsync("cancel", id, "--gateway", _silo.Gateway);

        Assert.True(code == 0, err);
        Assert.Equal($"{id} had already ended: completed after step 3", output.TrimEnd());
    }

    [GeneratedRegex(@"^job-[0-9a-f]{12}$")]
    private static partial Regex JobId();
}
