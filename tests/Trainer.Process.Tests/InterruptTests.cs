using Trainer.Cluster.Tests;

namespace Trainer.Process.Tests;

/// <summary>
/// Ctrl+C (SIGINT) and SIGTERM end a running command with 130 and one `interrupted` line, as cli.md
/// promises: `train` cancels its job first (on its embedded silo, and on a cluster), `watch` only stops
/// watching, and the job trains on (and has no `result` until it ends).
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class InterruptTests
{
    private const int Interrupt = 2;
    // Far more steps than the test lasts: every job here ends by a signal or a cancel.
    private static readonly string[] LongJob = ["--steps", "1000000", "--json"];
    // The command's own wind-down (Commands.TerminationTimeout, 10 s), and the client's start on 2 loaded cores.
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task CtrlC_EndsTrainWith130_AfterCancellingItsJob_AndSigtermEndsWatch_WhileTheJobTrainsOn()
    {
        await using var cluster = await LocalCluster.CreateAsync(silos: 1, "--blas-threads 1");

        // On its embedded silo: interrupted after its first step, nothing but the one line on stderr.
        var embedded = await RunUntilFirstStepAsync(cluster, embedded: true, Interrupt, ["train", .. LongJob]);
        Assert.True(embedded.Code == 130, embedded.ToString());
        Assert.Equal("trainer: error: interrupted", embedded.Err.Trim());

        await cluster.StartAsync();
        var submitted = await cluster.TrainerAsync("submit", "--steps", "1000000");
        Assert.True(submitted.Code == 0, submitted.ToString());
        string watched = submitted.Out.Trim();

        // `watch` on SIGTERM: 130, and the job it watched still running.
        var watch = await RunUntilFirstStepAsync(cluster, embedded: false, Signals.Term, ["watch", watched, "--json"]);
        Assert.True(watch.Code == 130, watch.ToString());
        Assert.Equal("trainer: error: interrupted", watch.Err.Trim());
        Assert.Equal("running", (await cluster.StatusAsync(watched)).GetProperty("state").GetString());
        // While it runs, the job has no result: refused, and no weights saved as if they were its.
        string folder = Path.Combine(cluster.Folder, "running-weights");
        var result = await cluster.TrainerAsync("result", watched, "--save", $"npy:{folder}");
        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains($"job: '{watched}' is not allowed; allowed: a finished job; it is still running (step ", result.Err);
        Assert.False(Directory.Exists(folder), $"{folder} was made for a job without a result");


        // `train` on a cluster, on Ctrl+C: 130, and its job cancelled.
        var train = await RunUntilFirstStepAsync(cluster, embedded: false, Interrupt, ["train", .. LongJob]);
        Assert.True(train.Code == 130, train.ToString());
        string trained = (await cluster.ListAsync()).Keys.Single(id => id != watched);
        await Poll.UntilAsync(async () => (await cluster.StatusAsync(trained)).GetProperty("state").GetString(), state => state == "cancelled",
            TimeSpan.FromSeconds(30), state => $"job {trained} is {state}");

        var cancelled = await cluster.TrainerAsync("cancel", watched);
        Assert.True(cancelled.Code == 0, cancelled.ToString());
    }

    /// <summary>Runs a command and sends it <paramref name="signal"/> once it has printed its first step.</summary>
    private static Task<ProcessResult> RunUntilFirstStepAsync(LocalCluster cluster, bool embedded, int signal, string[] args)
    {
        int pid = 0, sent = 0;
        return cluster.SignalableTrainerAsync(Deadline, embedded, started => Volatile.Write(ref pid, started), line =>
        {
            if (line.Contains("\"event\":\"step\"", StringComparison.Ordinal) && Interlocked.Exchange(ref sent, 1) == 0)
                Signals.Send(Volatile.Read(ref pid), signal, $"trainer {args[0]}");
        }, args);
    }
}
