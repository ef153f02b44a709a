using System.Diagnostics;
using System.Text.Json;
using Trainer.Cluster.Tests;

namespace Trainer.Process.Tests;

/// <summary>
/// Several jobs train at once on 3 silos with Redis membership and storage while silos are killed
/// with SIGKILL and started again, one after another: the silo holding the job grains first, then
/// silos picked at random (seeded; the seed is printed, TRAINER_CHAOS_SEED repeats the choice). Every
/// job must complete by itself with the losses and weights of its undisturbed run: none lost, none
/// stuck. bench/chaos.sh is the longer version.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class ChaosTests
{
    // Sized for CI (about a minute and a half): bench/chaos.sh is the long version, with more jobs, kills and restarts.
    private const int Kills = 2;
    // Jobs are sized by a short run of each to about this long undisturbed, so that the kills, each
    // followed by a silo's restart, fall inside them. NOTE: the calibration's runs barely overlap, while
    // the jobs run together (and beside their references), so each takes about three times this.
    private const double TargetSeconds = 12;
    private const int CalibrationSteps = 200, MinSteps = 600;
    private static readonly TimeSpan JobDeadline = TimeSpan.FromMinutes(5);

    // Data-parallel with two optimizers (Adam's moments must come back from the checkpoint) and
    // workers on three silos, and a split first layer (links between silos; a larger model, since a
    // split job runs many steps per call and would otherwise end first).
    private static readonly string[][] Jobs =
    [
        ["--model", "1000-100-10", "--workers", "3", "--seed", "1", "--parallel", "data", "--optimizer", "sgd"],
        ["--model", "1000-100-10", "--workers", "2", "--seed", "2", "--parallel", "data", "--optimizer", "adam", "--lr", "1e-4"],
        ["--model", "2000-200-10", "--workers", "3", "--seed", "5", "--parallel", "split", "--optimizer", "adam", "--lr", "1e-4"],
    ];

    private static readonly string[] Checkpoints = ["--checkpoint-every", "50", "--checkpoint-min-seconds", "0"];

    [Fact]
    public async Task ConcurrentJobs_SurviveSilosKilledAndRestartedOneAfterAnother_EachWithItsUndisturbedBits()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("TRAINER_CHAOS_SEED"), out var fixedSeed) ? fixedSeed : Environment.TickCount & 0x7FFFFFFF;
        var random = new Random(seed);
        await using var redis = await RedisServer.StartAsync();
        await using var cluster = await LocalCluster.CreateOnRedisAsync(redis, silos: 3, "--blas-threads 1");
        var log = new List<string>();
        void Say(string line)
        {
            log.Add(line);
            cluster.Report(line);
        }
        Say($"chaos seed {seed} (TRAINER_CHAOS_SEED={seed} repeats the choice of silos)");
        await cluster.StartAsync();

        int[] steps = await StepsAsync(cluster);

        // The jobs, submitted (their clients then leave), while the silos are killed.
        // Started as the calibration was: each client once the one before has printed (here: its job's id).
        var submitted = await OneAfterAnotherAsync((j, onLine) => cluster.TrainerAsync(JobDeadline, onLine, ["submit", .. Jobs[j], .. Checkpoints, "--steps", $"{steps[j]}"]));
        foreach (var s in submitted) Assert.True(s.Code == 0, s.ToString());
        string[] ids = [.. submitted.Select(s => s.Out.Trim())];
        // The references: each job undisturbed, in one process, one after another beside the cluster's
        // (slowing the cluster only keeps its jobs running longer).
        var referencesRun = Task.Run(async () =>
        {
            var runs = new List<ProcessResult>();
            for (int j = 0; j < Jobs.Length; j++)
                runs.Add(await cluster.EmbeddedTrainerAsync(["train", .. Jobs[j], .. Checkpoints, "--steps", $"{steps[j]}", "--save", $"npy:{Path.Combine(cluster.Folder, $"undisturbed-{j}")}", "--json"]));
            return runs;
        });
        var chaos = Stopwatch.StartNew();
        var kills = new List<string>();
        var killsWhileRunning = new int[Jobs.Length];
        // The silos' logs say when a job started and ended: read from files, they cost no client's start-up,
        // which on a loaded machine takes seconds a job may not last. A job counts as running from its
        // "started" line to its end line, so a kill counted for it landed inside it.
        bool Running(int j) => Logged(cluster, ids[j], " started: ") && !Logged(cluster, ids[j], " completed after ", " failed after ", " cancelled after ");
        await Poll.UntilAsync(() => Task.FromResult(Enumerable.Range(0, Jobs.Length).Count(j => Logged(cluster, ids[j], " started: "))),
            started => started == Jobs.Length, JobDeadline, started => $"{started} of {Jobs.Length} jobs started");
        for (int kill = 0; kill < Kills; kill++)
        {
            // The first kill lands as soon as every job has started and takes the silo holding the job
            // grains (the oldest); each later one, a silo at random, as soon as the cluster has taken the
            // last one back: while jobs may still be restoring from the last kill.
            var running = Enumerable.Range(0, Jobs.Length).Where(Running).ToArray();
            if (running.Length == 0) break;
            foreach (int j in running) killsWhileRunning[j]++;
            int silo = kill == 0 ? JobGrainsSilo(cluster) : random.Next(cluster.Silos);
            await cluster.KillAsync(silo);
            var restart = Stopwatch.StartNew();
            await cluster.RestartAsync(silo);
            kills.Add($"silo {silo}");
            Say($"{chaos.Elapsed.TotalSeconds,5:F1} s: killed silo {silo}{(kill == 0 ? " (the job grains')" : "")} with jobs {string.Join(", ", running)} running; "
                + $"ready again after {restart.Elapsed.TotalSeconds:F1} s");
        }
        // NOTE: the jobs are sized to outlast a silo's restart on this machine; the first kill lands inside
        // every job, and the second inside at least one.
        Assert.True(kills.Count == Kills && killsWhileRunning.All(k => k >= 1) && killsWhileRunning.Sum() > Jobs.Length,
            $"the kills did not land inside the jobs (kills while running, per job: {string.Join(", ", killsWhileRunning)}): the jobs were too short.\n{string.Join('\n', log)}");

        var references = await referencesRun;
        foreach (var reference in references) Assert.True(reference.Code == 0, reference.ToString());
        // None lost, none stuck: every job completes by itself, with the losses and weights of its undisturbed run.
        var watched = new List<ProcessResult>();
        foreach (var id in ids) watched.Add(await ConnectingAsync(() => cluster.TrainerAsync(JobDeadline, "watch", id, "--from-start", "--json")));
        Say($"{chaos.Elapsed.TotalSeconds,5:F1} s: all {Jobs.Length} jobs ended after {kills.Count} kills and restarts ({string.Join(", ", kills)}); "
            + $"checkpoint restores per job: {string.Join(", ", ids.Select(id => Restores(cluster, id)))}");
        for (int j = 0; j < Jobs.Length; j++)
        {
            Assert.True(watched[j].Code == 0, $"job {ids[j]} ({string.Join(' ', Jobs[j])}):\n{watched[j]}\n{string.Join('\n', log)}\n"
                + $"silo log lines about it:\n{cluster.AllLogLines($"Job {ids[j]}")}\nlogs: {cluster.Folder}");
            Assert.Equal("completed", TrainJson.FinalEvent(watched[j].Out).GetProperty("event").GetString());
            Assert.Equal(TrainJson.StepLosses(references[j].Out), TrainJson.StepLosses(watched[j].Out));
            var disturbed = Path.Combine(cluster.Folder, $"disturbed-{j}");
            var saved = await ConnectingAsync(() => cluster.TrainerAsync("result", ids[j], "--save", $"npy:{disturbed}"));
            Assert.True(saved.Code == 0, saved.ToString());
            Weights.AssertSameBytes(Path.Combine(cluster.Folder, $"undisturbed-{j}"), disturbed, $"of job {ids[j]} after the kills");
        }
    }

    /// <summary>Whether any silo's log, in this life or an earlier one, has a line on the job with one of <paramref name="texts"/>.</summary>
    private static bool Logged(LocalCluster cluster, string jobId, params string[] texts) =>
        cluster.AllLogLines($"Job {jobId}").Split('\n').Any(l => texts.Any(t => l.Contains(t, StringComparison.Ordinal)));

    /// <summary>
    /// Each job's steps for about <see cref="TargetSeconds"/> of training plus the time the jobs after
    /// it take to start (their clients start one after another), from a short run of all of them so
    /// started: the jobs are still running when the last one has started, and the kills fall inside them.
    /// </summary>
    private static async Task<int[]> StepsAsync(LocalCluster cluster)
    {
        // Twice, the second timed: a fresh cluster's first steps run before the silos have compiled the
        // per-step path fully optimized (tiered compilation), slower than the jobs' will (TrainJson.StepsForAsync).
        ProcessResult[] runs = [];
        var firstStep = new double[Jobs.Length];
        for (int round = 0; round < TrainJson.CalibrationJobs; round++)
        {
            var clock = Stopwatch.StartNew();
            Array.Clear(firstStep);
            runs = await OneAfterAnotherAsync((j, onLine) => cluster.TrainerAsync(JobDeadline,
                line => { if (firstStep[j] == 0) firstStep[j] = clock.Elapsed.TotalSeconds; onLine(line); },
                ["train", .. Jobs[j], "--steps", $"{CalibrationSteps}", "--json"]));
        }
        // A job started early waits for the others to start (and trains faster after its first steps than here): twice the wait.
        return [.. runs.Select((run, j) =>
        {
            Assert.True(run.Code == 0, run.ToString());
            double rate = TrainJson.FinalEvent(run.Out).GetProperty("steps_per_second").GetDouble();
            return (int)Math.Clamp(rate * (TargetSeconds + 2 * (firstStep.Max() - firstStep[j])), MinSteps, 20_000);
        })];
    }

    /// <summary>
    /// A client per job, each started once the one before has printed its first line (its job runs):
    /// clients that all start at once on 2 shared cores can each take longer than their 30 s to connect.
    /// </summary>
    private static async Task<ProcessResult[]> OneAfterAnotherAsync(Func<int, Action<string>, Task<ProcessResult>> start)
    {
        var runs = new Task<ProcessResult>[Jobs.Length];
        for (int j = 0; j < Jobs.Length; j++)
        {
            var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            int job = j;
            runs[j] = ConnectingAsync(() => start(job, _ => running.TrySetResult()));
            await Task.WhenAny(running.Task, runs[j]);
        }
        return await Task.WhenAll(runs);
    }

    /// <summary>
    /// Runs a client again when it could not connect at all (it then submitted nothing): five clients
    /// starting at once on 2 shared cores can each take longer than the client's 30 s to reach a gateway.
    /// </summary>
    private static async Task<ProcessResult> ConnectingAsync(Func<Task<ProcessResult>> run)
    {
        for (int attempt = 1; ; attempt++)
        {
            var result = await run();
            if (attempt == 3 || result.Code != 2 || !(result.Out + result.Err).Contains("no gateway answered", StringComparison.Ordinal)) return result;
        }
    }

    /// <summary>The silo that started the jobs (job grains all go to the oldest silo), before any restart.</summary>
    private static int JobGrainsSilo(LocalCluster cluster) =>
        Enumerable.Range(0, cluster.Silos).Single(i => cluster.Log(i).Contains(" started: "));

    /// <summary>How often the job went back to its checkpoint: a failed window of steps, or its grain re-activated after its silo died.</summary>
    private static int Restores(LocalCluster cluster, string jobId) =>
        cluster.AllLogLines($"Job {jobId}").Split('\n').Count(l => l.Contains("restoring the checkpoint") || l.Contains("resumes from its checkpoint"));
}
