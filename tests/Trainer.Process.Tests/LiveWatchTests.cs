using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Trainer.Process.Tests;

/// <summary>
/// `trainer watch` on a real three-process cluster that is busy training two jobs: a line for a
/// step appears within a second of the step (every step with --json, a sample once a second for
/// humans), `--from-start` replays the history first, the job answers `status` within a second (its
/// --verbose line says how long the answer took, apart from the client's start-up), and cancelling the
/// job ends every watcher with the job's final state.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class LiveWatchTests
{
    // --blas-threads 1: three silos share 2 cores.
    private const string SiloArgs = "--blas-threads 1";
    // Far more steps than the test lasts: the jobs are cancelled at the end.
    private static readonly string[] LongJob = ["--model", "1000-100-10", "--workers", "3", "--parallel", "data", "--steps", "1000000"];
    private static readonly TimeSpan JsonLatency = TimeSpan.FromSeconds(1);
    // A human watch prints the latest step once a second (PlainProgress.LiveEvery), so a step waits up to that long for its line.
    private static readonly TimeSpan HumanLatency = TimeSpan.FromSeconds(2);
    private const int Probes = 3;
    private const int StatusAnswerMs = 1000;

    [Fact]
    public async Task Watch_ShowsEachStepWithinASecond_WhileTwoJobsTrain_AndEndsWithTheCancelledState()
    {
        // The silos at cluster.sh's own priority (nice 10), as users run them: two jobs then keep both cores
        // busy without starving the commands a user types meanwhile, whose answers this test times.
        await using var cluster = await LocalCluster.CreateAsync(silos: 3, SiloArgs, environment: new Dictionary<string, string> { ["TRAINER_SILO_NICE"] = "" });
        await cluster.StartAsync();

        string watched = await SubmitAsync(cluster), other = await SubmitAsync(cluster);
        var clock = Stopwatch.StartNew();
        var jsonLines = new Lines(clock);
        var humanLines = new Lines(clock);
        var replayLines = new Lines(clock);
        var watchers = new[]
        {
            cluster.TrainerAsync(TimeSpan.FromMinutes(5), jsonLines.Add, "watch", watched, "--json"),
            cluster.TrainerAsync(TimeSpan.FromMinutes(5), humanLines.Add, "watch", watched),
            cluster.TrainerAsync(TimeSpan.FromMinutes(5), replayLines.Add, "watch", watched, "--from-start", "--json"),
        };
        // Every watcher attached and printing: the probes below time steps, not client start-ups.
        await Poll.UntilAsync(() => Task.FromResult(jsonLines.Count > 0 && humanLines.Count > 0 && replayLines.Count > 0), ok => ok,
            TimeSpan.FromSeconds(60), _ => $"json {jsonLines.Count}, human {humanLines.Count}, replay {replayLines.Count} lines; {Faulted(watchers)}");

        // The job grain's answer times: their median must be under StatusAnswerMs (one probe may meet a busy moment of 2 loaded cores).
        var answers = new List<(int Ms, string Text)>();
        for (int probe = 0; probe < Probes; probe++)
        {
            var call = Stopwatch.StartNew();
            var result = await cluster.TrainerAsync("status", watched, "--json", "--verbose");
            Assert.True(result.Code == 0, result.ToString());
            // The job had completed this step before status answered, so the watchers owe a line for it.
            var answered = clock.Elapsed;
            var status = JsonDocument.Parse(result.Out).RootElement;
            int steps = status.GetProperty("steps").GetInt32();
            Assert.Equal("running", status.GetProperty("state").GetString());
            // The job grain answers while it trains; the rest of the command's time is the client's own start-up.
            var answer = Regex.Match(result.Err, @"the job answered in (\d+) ms");
            Assert.True(answer.Success, result.ToString());
            answers.Add((int.Parse(answer.Groups[1].Value), $"{answer.Groups[1].Value} ms (the whole command took {call.Elapsed.TotalSeconds:F2} s)"));

            var json = await jsonLines.FirstReachingAsync(JsonStep, steps, answered + JsonLatency + TimeSpan.FromSeconds(30));
            Assert.True(json.At - answered <= JsonLatency,
                $"watch --json printed step {json.Step} (>= {steps}) {(json.At - answered).TotalSeconds:F2} s after status reported step {steps}; at most {JsonLatency.TotalSeconds} s allowed");
            var human = await humanLines.FirstReachingAsync(HumanStep, steps, answered + HumanLatency + TimeSpan.FromSeconds(30));
            Assert.True(human.At - answered <= HumanLatency,
                $"watch printed step {human.Step} (>= {steps}) {(human.At - answered).TotalSeconds:F2} s after status reported step {steps}; at most {HumanLatency.TotalSeconds} s allowed");
        }

        Assert.True(answers.Select(a => a.Ms).Order().ElementAt(Probes / 2) < StatusAnswerMs,
            $"the job answered status while training in {string.Join(", ", answers.Select(a => a.Text))}; a median under {StatusAnswerMs} ms allowed");

        foreach (var id in new[] { watched, other })
        {
            var cancel = await cluster.TrainerAsync("cancel", id);
            Assert.True(cancel.Code == 0, cancel.ToString());
        }
        var ended = await Task.WhenAll(watchers);
        foreach (var watcher in ended)
        {
            Assert.True(watcher.Code == 5, $"a watcher of a cancelled job should exit with 5 (cancelled):\n{watcher}");
        }
        Assert.StartsWith($"cancelled: job {watched}, final loss ", ended[1].Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        Assert.Contains("\"event\":\"cancelled\"", ended[0].Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);

        // --from-start replays every step from 1 in order, then follows the job: no step missing or repeated.
        var replayed = replayLines.Steps(JsonStep);
        Assert.Equal(Enumerable.Range(1, replayed.Length), replayed);
        // The live --json watcher, attached mid-job, printed every step from where it attached.
        var live = jsonLines.Steps(JsonStep);
        Assert.Equal(Enumerable.Range(live[0], live.Length), live);
    }

    private static async Task<string> SubmitAsync(LocalCluster cluster)
    {
        var submitted = await cluster.TrainerAsync(["submit", .. LongJob]);
        Assert.True(submitted.Code == 0, submitted.ToString());
        return submitted.Out.Trim();
    }

    private static string Faulted(Task<ProcessResult>[] watchers) =>
        string.Join("; ", watchers.Where(w => w.IsCompleted).Select(w => w.IsFaulted ? w.Exception!.Message : w.Result.ToString()));

    /// <summary>The step of a --json step line, or null for any other line.</summary>
    private static int? JsonStep(string line) =>
        line.StartsWith("{\"event\":\"step\"", StringComparison.Ordinal) ? JsonDocument.Parse(line).RootElement.GetProperty("step").GetInt32() : null;

    /// <summary>The step of a human "step N: loss X" line, or null for any other line.</summary>
    private static int? HumanStep(string line) =>
        line.StartsWith("step ", StringComparison.Ordinal) && int.TryParse(line.AsSpan(5, line.IndexOf(':') - 5), out var step) ? step : null;

    /// <summary>A child's stdout lines with the time each arrived.</summary>
    private sealed class Lines(Stopwatch clock)
    {
        private readonly List<(TimeSpan At, string Text)> _lines = [];

        public int Count { get { lock (_lines) return _lines.Count; } }

        public void Add(string line)
        {
            var at = clock.Elapsed;
            lock (_lines) _lines.Add((at, line));
        }

        public int[] Steps(Func<string, int?> step)
        {
            lock (_lines) return [.. _lines.Select(l => step(l.Text)).OfType<int>()];
        }

        /// <summary>The first line whose step is at least <paramref name="steps"/>, once it has arrived (polled until <paramref name="until"/>).</summary>
        public async Task<(int Step, TimeSpan At)> FirstReachingAsync(Func<string, int?> step, int steps, TimeSpan until)
        {
            while (true)
            {
                lock (_lines)
                {
                    foreach (var (at, text) in _lines)
                        if (step(text) is int s && s >= steps) return (s, at);
                }
                if (clock.Elapsed > until) throw new TimeoutException($"No line reached step {steps} by {until.TotalSeconds:F1} s; {Count} lines so far.");
                await Task.Delay(TimeSpan.FromMilliseconds(50));
            }
        }
    }
}
