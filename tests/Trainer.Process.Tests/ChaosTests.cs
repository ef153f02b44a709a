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
    private const int Kills = 3;
    // The first kill lands as soon as every job has started; each later one once every job still
    // running has trained on by this share of its steps since the last restart (the cluster took the
    // restarted silo back).
    private const double ProgressBetweenKills = 0.1;
    // Jobs are sized by a short run of all of them to about this long undisturbed, so that the kills,
    // each followed by a silo's restart, fall inside them.
    private const double TargetSeconds = 15;
    private const int CalibrationSteps = 300, MinSteps = 1000;
    private static readonly TimeSpan JobDeadline = TimeSpan.FromMinutes(5);

    // Data-parallel with three optimizers (Adam's moments and momentum's velocity must come back from
    // the checkpoint) and two workers on three silos, and a split first layer (links between silos;
    // a larger model, since a split job runs many steps per call and would otherwise end first).
    private static readonly string[][] Jobs =
    [
        ["--model", "1000-100-10", "--workers", "3", "--seed", "1", "--parallel", "data", "--optimizer", "sgd"],
        ["--model", "1000-100-10", "--workers", "3", "--seed", "2", "--parallel", "data", "--optimizer", "adam", "--lr", "1e-4"],
        ["--model", "500-50-10", "--workers", "2", "--seed", "3", "--parallel", "data", "--optimizer", "momentum"],
        ["--model", "1000-100-10", "--workers", "2", "--seed", "4", "--parallel", "data", "--optimizer", "nesterov"],
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
        var references = await OneAfterAnotherAsync((j, onLine) => cluster.TrainerAsync(JobDeadline, onLine,
            ["train", .. Jobs[j], .. Checkpoints, "--steps", $"{steps[j]}", "--save", $"npy:{Path.Combine(cluster.Folder, $"undisturbed-{j}")}", "--json"]));
        foreach (var reference in references) Assert.True(reference.Code == 0, reference.ToString());

        // The jobs again, submitted (their clients then leave), while the silos are killed; `list` shows their progress.
        // Started as the calibration was: each client once the one before has printed (here: its job's id).
        var submitted = await OneAfterAnotherAsync((j, onLine) => cluster.TrainerAsync(JobDeadline, onLine, ["submit", .. Jobs[j], .. Checkpoints, "--steps", $"{steps[j]}"]));
        foreach (var s in submitted) Assert.True(s.Code == 0, s.ToString());
        string[] ids = [.. submitted.Select(s => s.Out.Trim())];
        var chaos = Stopwatch.StartNew();
        Dictionary<string, Listed> listed = [];
        var kills = new List<string>();
        var since = new int[Jobs.Length];
        var killsWhileRunning = new int[Jobs.Length];
        int firstKillRunning = 0;
        bool Running(int j) => listed[ids[j]].State == "running";
        for (int kill = 0; kill < Kills; kill++)
        {
            // Each later kill waits until every job still running has trained on: the cluster took the restarted silo back.
            listed = await Poll.UntilAsync(() => ListAsync(cluster), now => kill == 0 || Enumerable.Range(0, Jobs.Length).All(j =>
                    now[ids[j]].State != "running" || now[ids[j]].Steps >= since[j] + ProgressBetweenKills * steps[j]),
                JobDeadline, now => string.Join(", ", ids.Select(id => $"{id} {now[id].State} at step {now[id].Steps}")));
            var running = Enumerable.Range(0, Jobs.Length).Where(Running).ToArray();
            if (running.Length == 0) break;
            foreach (int j in running) killsWhileRunning[j]++;
            if (kill == 0) firstKillRunning = running.Length;
            // The first kill takes the silo holding the job grains (the oldest); the others any silo.
            int silo = kill == 0 ? JobGrainsSilo(cluster) : random.Next(cluster.Silos);
            string at = string.Join(", ", Enumerable.Range(0, Jobs.Length).Select(j => $"{listed[ids[j]].Steps}/{steps[j]}"));
            await cluster.KillAsync(silo);
            var restart = Stopwatch.StartNew();
            await cluster.RestartAsync(silo);
            for (int j = 0; j < Jobs.Length; j++) since[j] = listed[ids[j]].Steps;
            kills.Add($"silo {silo}");
            Say($"{chaos.Elapsed.TotalSeconds,5:F1} s: killed silo {silo}{(kill == 0 ? " (the job grains')" : "")} with {running.Length} jobs running (steps {at}); "
                + $"ready again after {restart.Elapsed.TotalSeconds:F1} s");
        }
        // NOTE: how far each job gets between kills depends on the machine's load; at least the kills
        // must land mid-job, the first with most jobs running, and on average one per job.
        Assert.True(kills.Count >= 2 && firstKillRunning >= Jobs.Length - 2 && killsWhileRunning.Sum() >= Jobs.Length,
            $"the kills did not land inside the jobs (kills while running, per job: {string.Join(", ", killsWhileRunning)}): the jobs were too short.\n{string.Join('\n', log)}");

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

    private sealed record Listed(string State, int Steps);

    private static async Task<Dictionary<string, Listed>> ListAsync(LocalCluster cluster) =>
        (await cluster.ListAsync()).ToDictionary(e => e.Key, e => new Listed(e.Value.GetProperty("state").GetString()!, e.Value.GetProperty("steps").GetInt32()));

    /// <summary>
    /// Each job's steps for about <see cref="TargetSeconds"/> of training plus the time the jobs after
    /// it take to start (their clients start one after another), from a short run of all of them so
    /// started: the jobs are still running when the last one has started, and the kills fall inside them.
    /// </summary>
    private static async Task<int[]> StepsAsync(LocalCluster cluster)
    {
        var clock = Stopwatch.StartNew();
        var firstStep = new double[Jobs.Length];
        var runs = await OneAfterAnotherAsync((j, onLine) => cluster.TrainerAsync(JobDeadline,
            line => { if (firstStep[j] == 0) firstStep[j] = clock.Elapsed.TotalSeconds; onLine(line); },
            ["train", .. Jobs[j], "--steps", $"{CalibrationSteps}", "--json"]));
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
