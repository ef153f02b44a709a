using System.Text.Json;

namespace Trainer.Process.Tests;

/// <summary>
/// A job survives SIGKILL of a non-primary silo in a real three-process cluster (and a supervisor's
/// SIGTERM of a silo, which then exits by itself), and ends with
/// exactly the losses and weights of an undisturbed run, the single-process trainer's (workers are re-placed and recompute the same shards;
/// a split job restores its checkpoint). Data-parallel jobs run with SGD and with Adam: Adam's step
/// reads its moments, so a resumed job only ends with the undisturbed bits when the parameter server
/// kept them (a lost worker) or its checkpoint carried them (the job's silo lost).
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class SiloCrashTests
{
    // The job must still be running when the kill lands, whatever this machine's speed: a short
    // calibration job measures steps/s on this cluster, and the real job is sized to ~8 s of it
    // (the kill lands within its first few hundred steps, triggered by its own loss lines, well
    // under a second into it).
    private const double TargetSeconds = 8;
    private const int CalibrationSteps = 300;
    private const int MinSteps = 2000;
    private const int SecondJobSteps = 20;

    // NOTE: Orleans declares a SIGKILLed silo dead after ~12 s with its default probes (measured);
    // until then calls to the dead silo's workers fail, and the parameter server keeps retrying
    // them within its time budget (Trainer:WorkerRetryBudget, 90 s by default).
    // --blas-threads 1: three silos share 2 cores; OpenBLAS threads per silo would only contend.
    private const string SiloArgs = "--blas-threads 1 "
        + "--Logging:LogLevel:Orleans.Runtime.MembershipService=Information --Logging:LogLevel:Orleans.Runtime.GrainDirectory=Information";

    [Theory]
    [InlineData("sgd")]
    [InlineData("adam")]
    public async Task KillingANonPrimarySilo_MidJob_StillCompletes_WithTheUndisturbedWeights(string optimizer)
    {
        await using var cluster = await LocalCluster.CreateAsync(silos: 3, SiloArgs);
        await cluster.StartAsync();
        // Localhost clustering: silo 0 is the primary (and holds the job grain); silo 2 holds a worker.
        await KillMidJobAndCompareAsync(cluster, killSilo: 2, Job("data", optimizer), killAfterSteps: 20);
    }

    [Fact]
    public async Task KillingANonPrimarySilo_MidSplitJob_RestoresItsCheckpoint_WithTheUndisturbedWeights()
    {
        await using var cluster = await LocalCluster.CreateAsync(silos: 3, SiloArgs);
        await cluster.StartAsync();
        // Silo 2 holds worker 2, the only holder of its slice of the first layer: the other workers'
        // links to it break at once, and the job must go back to its checkpoint.
        await KillMidJobAndCompareAsync(cluster, killSilo: 2, [.. Job("split", "sgd"), "--checkpoint-every", "50", "--checkpoint-min-seconds", "0"], killAfterSteps: 120);
    }

    // Redis membership has no primary: silo 0, the oldest, holds the job grain and its parameter
    // server, and dies; the job must resume on a survivor from its checkpoint in Redis, with Adam's
    // moments (they are in the checkpoint after the parameters), while the `train` client that
    // submitted it stays attached. ChaosTests kills the same silo under SGD, Adam and split jobs at once.
    [Fact]
    public Task OnRedisMembership_KillingTheJobsSilo_MidJob_ResumesFromItsCheckpoint_WithTheUndisturbedWeights()
        => KillTheJobsSiloOnRedisAsync(Job("data", "adam"));

    // A supervisor's stop (cluster.sh stop, a Kubernetes rolling update) is SIGTERM: the silo leaves the
    // membership at once, its grains deactivate and are placed again on the others, and it exits by itself.
    // On Redis membership that may be the job's own silo: its job grain, parameter server and worker 0 start
    // again on survivors from the job's checkpoint in Redis, and the `train` client stays attached.
    [Fact]
    public async Task OnRedisMembership_StoppingTheJobsSilo_WithSigterm_MidJob_ResumesTheJob_WithTheUndisturbedWeights_AndTheSiloExitsCleanly()
    {
        await using var redis = await Trainer.Cluster.Tests.RedisServer.StartAsync();
        await using var cluster = await LocalCluster.CreateOnRedisAsync(redis, silos: 3, SiloArgs);
        await cluster.StartAsync();
        await StopMidJobAndCompareAsync(cluster, silo: 0, [.. Job("data", "adam"), "--checkpoint-every", "50", "--checkpoint-min-seconds", "0"], killAfterSteps: 120);
    }

    private static async Task StopMidJobAndCompareAsync(LocalCluster cluster, int silo, string[] job, int killAfterSteps)
    {
        using var process = System.Diagnostics.Process.GetProcessById(cluster.Pid(silo));
        await KillMidJobAndCompareAsync(cluster, silo, job, killAfterSteps, cluster.Terminate);

        // Well within a supervisor's grace period (Kubernetes' default is 30 s) before it would SIGKILL.
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(grace.Token);
        var log = cluster.Log(silo);
        Assert.Contains("Silo stopping: leaving the cluster", log);
        Assert.Contains("Silo stopped after", log);
    }

    // The mode is always named: auto would split this model, and the data-parallel tests are about replicas.
    private static string[] Job(string parallel, string optimizer) =>
        ["--model", "1000-100-10", "--workers", "3", "--seed", "0", "--parallel", parallel, "--optimizer", optimizer];

    /// <summary>A 3-silo cluster on Redis membership (its own redis-server); SIGKILL of silo 0, which holds the job grain, mid-job.</summary>
    private static async Task KillTheJobsSiloOnRedisAsync(string[] job)
    {
        await using var redis = await Trainer.Cluster.Tests.RedisServer.StartAsync();
        await using var cluster = await LocalCluster.CreateOnRedisAsync(redis, silos: 3, SiloArgs);
        await cluster.StartAsync();
        await KillMidJobAndCompareAsync(cluster, killSilo: 0, [.. job, "--checkpoint-every", "50", "--checkpoint-min-seconds", "0"], killAfterSteps: 120);
    }

    /// <summary>
    /// Runs the job on the cluster with a SIGKILL (or <paramref name="stop"/>) of one silo mid-job, and undisturbed in one
    /// process beside it, and requires the cluster's run to complete by itself with the same losses and byte-identical
    /// weights; then a new job on the survivors.
    /// </summary>
    private static async Task KillMidJobAndCompareAsync(LocalCluster cluster, int killSilo, string[] job, int killAfterSteps, Action<int>? stop = null)
    {
        stop ??= cluster.Kill;
        var undisturbed = Path.Combine(cluster.Folder, "undisturbed");
        var recovered = Path.Combine(cluster.Folder, "recovered");

        // NOTE: the floor matters when the calibration ran while other test projects loaded both cores
        // and the real job then runs alone, several times faster: 2000 steps still take seconds.
        int steps = await TrainJson.StepsForAsync(cluster, job, CalibrationSteps, TargetSeconds, MinSteps);

        // The reference: the same job, nothing killed, in one process beside the cluster's run (slowing
        // that run only makes the kill land earlier in it).
        var referenceRun = cluster.EmbeddedTrainerAsync(["train", .. job, "--steps", $"{steps}", "--save", $"npy:{undisturbed}", "--json"]);
        string optimizer = job[Array.IndexOf(job, "--optimizer") + 1];

        // The kill is triggered from the job's own loss stream, by the client that submitted it: no
        // extra client process has to start first (under load that took longer than the whole job).
        int killedAt = 0;
        void KillOnce(string line)
        {
            if (killedAt != 0 || !line.StartsWith("{\"event\":\"step\"", StringComparison.Ordinal)) return;
            int step = JsonDocument.Parse(line).RootElement.GetProperty("step").GetInt32();
            if (step < killAfterSteps) return;
            killedAt = step;
            stop(killSilo);
        }
        var run = await cluster.TrainerAsync(TimeSpan.FromSeconds(300), KillOnce, ["train", .. job, "--steps", $"{steps}", "--json"]);
        Assert.True(killedAt > 0, $"silo {killSilo} was never killed: no step >= {killAfterSteps} was printed.\n{run}");
        var jobId = TrainJson.JobId(run.Out);
        if (run.Code != 0 || jobId is null)
        {
            Assert.Fail($"The job did not survive the kill of silo {killSilo} at step {killedAt} of {steps} "
                + $"(the job grain ran on {cluster.SiloLogging("started: ")}).\n{run}\n"
                + $"silo log lines about jobs:\n{cluster.LogLines("Job ")}\nlogs: {cluster.Folder}");
        }
        Assert.True(killedAt < steps, $"the kill landed at step {killedAt}, after the last step {steps}");
        Assert.Equal(optimizer, TrainJson.FinalEvent(run.Out).GetProperty("optimizer").GetString());
        var status = await cluster.StatusAsync(jobId);
        Assert.Equal("completed", status.GetProperty("state").GetString());
        Assert.Equal(steps, status.GetProperty("steps").GetInt32());

        var result = await cluster.TrainerAsync("result", jobId, "--save", $"npy:{recovered}");
        Assert.True(result.Code == 0, result.ToString());
        var reference = await referenceRun;
        Assert.True(reference.Code == 0, reference.ToString());
        // The CLI's final event names the optimizer the job trained with: the option reached the job.
        Assert.Equal(optimizer, TrainJson.FinalEvent(reference.Out).GetProperty("optimizer").GetString());
        var referenceLosses = TrainJson.StepLosses(reference.Out);
        // Every step the client printed, before the kill and after it (a resumed job may print a step again, with its loss).
        foreach (var (step, loss) in TrainJson.FirstLossOfEachStep(run.Out))
            Assert.True(loss == referenceLosses[step - 1], $"step {step}: loss {loss:R} after the kill at step {killedAt}, {referenceLosses[step - 1]:R} undisturbed");
        Weights.AssertSameBytes(undisturbed, recovered, "after the kill");

        // The two survivors still take jobs; the same spec gives the reference's first losses.
        var second = await cluster.TrainerAsync(["train", .. job, "--steps", $"{SecondJobSteps}", "--json"]);
        Assert.True(second.Code == 0, second.ToString());
        Assert.Equal(referenceLosses[..SecondJobSteps], TrainJson.StepLosses(second.Out));
    }
}
