using System.Globalization;
using System.Text.Json;
using Trainer.Abstractions;

namespace Trainer.Client;

/// <summary>
/// Streams a job's losses to the console until it ends, as human-readable lines or, with --json,
/// one JSON object per line: {"event":"step","step":N,"loss":X} then a final event (which names the optimizer).
/// </summary>
/// <param name="live">
/// Human lines for a job already running (`watch`): besides the tutorial's ~10 lines, the latest
/// step whenever <see cref="LiveEvery"/> has passed since the last line, and at once when the first
/// losses arrive, so a long job shows where it is within a second. `train` keeps the ~10 lines.
/// </param>
internal sealed class JobWatcher(TextWriter output, TextWriter error, bool json, bool live = false)
{
    /// <summary>The longest a live human watch stays silent while steps complete.</summary>
    public static readonly TimeSpan LiveEvery = TimeSpan.FromSeconds(1);

    private readonly ClusterRetry _retry = new(error);
    private static readonly TimeSpan PollWait = TimeSpan.FromSeconds(1);
    private const int BatchSize = 10_000;
    private static readonly TimeSpan BatchingDelay = TimeSpan.FromMilliseconds(50);

    /// <summary>Watches from <paramref name="fromStep"/> (1 = the start) and returns the final status.</summary>
    public async Task<JobStatus> WatchAsync(ITrainingJobGrain job, int fromStep, CancellationToken cancellation)
    {
        int next = Math.Max(1, fromStep);
        var sinceLine = System.Diagnostics.Stopwatch.StartNew();
        bool anyLine = false;
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            int from = next;
            var batch = await _retry.RunAsync(() => job.GetLossesAsync(from, BatchSize, PollWait), cancellation);
            var status = batch.Status;
            if (status.State == JobState.Unknown) return status;
            var losses = batch.Losses.Values;
            int totalSteps = status.Spec?.Steps ?? 0;
            bool printed = false;
            for (int i = 0; i < losses.Length; i++) printed = WriteStep(batch.FromStep + i, losses[i], totalSteps);
            if (live && !json && losses.Length > 0 && !printed && (!anyLine || sinceLine.Elapsed >= LiveEvery))
            {
                WriteLine(batch.FromStep + losses.Length - 1, losses[^1]);
                printed = true;
            }
            if (printed)
            {
                anyLine = true;
                sinceLine.Restart();
            }
            next = batch.FromStep + losses.Length;
            // Terminal and nothing more to read: every loss has been printed.
            if (status.IsTerminal && next > status.StepsCompleted) return status;
            // Let losses pile up a little: one poll per step would compete with the job for its grain.
            if (losses.Length > 0) await Task.Delay(BatchingDelay, cancellation);
        }
    }

    /// <summary>Writes step <paramref name="step"/>'s line if it is one to show; true when it wrote one.</summary>
    public bool WriteStep(int step, double loss, int totalSteps)
    {
        if (json)
        {
            output.WriteLine($"{{\"event\":\"step\",\"step\":{step},\"loss\":{Number(loss)}}}");
            return true;
        }
        // Like the tutorial: the first and last step, plus about ten progress lines in between.
        int every = Math.Max(1, totalSteps / 10);
        if (!(step == 1 || step == totalSteps || step % every == 0 || !double.IsFinite(loss))) return false;
        WriteLine(step, loss);
        return true;
    }

    private void WriteLine(int step, double loss) => output.WriteLine($"step {step}: loss {loss.ToString("G10", CultureInfo.InvariantCulture)}");

    public void WriteOutcome(JobStatus status)
    {
        double seconds = status.TrainingSeconds;
        double rate = seconds > 0 ? status.StepsCompleted / seconds : 0;
        if (json)
        {
            var eventName = status.State switch
            {
                JobState.Completed => "completed",
                JobState.Diverged => "diverged",
                JobState.Cancelled => "cancelled",
                JobState.Unknown => "unknown",
                _ => "failed",
            };
            var fields = new List<string>
            {
                $"\"event\":\"{eventName}\"",
                $"\"job\":{JsonSerializer.Serialize(status.JobId)}",
                $"\"steps\":{status.StepsCompleted}",
                $"\"final_loss\":{Number(status.LastLoss)}",
                $"\"seconds\":{Number(seconds)}",
                $"\"steps_per_second\":{Number(rate)}",
            };
            if (status.Spec is { } spec) fields.Add($"\"optimizer\":{JsonSerializer.Serialize(spec.Optimizer.Name)}");
            if (status.Message is { } message) fields.Add($"\"message\":{JsonSerializer.Serialize(message)}");
            output.WriteLine("{" + string.Join(",", fields) + "}");
            return;
        }
        var summary = status.State switch
        {
            JobState.Completed => "completed",
            JobState.Unknown => "unknown job",
            _ => status.State.ToString().ToLowerInvariant(),
        };
        output.WriteLine($"{summary}: job {status.JobId}, final loss {status.LastLoss.ToString("G10", CultureInfo.InvariantCulture)} after {status.StepsCompleted} steps in {seconds.ToString("F2", CultureInfo.InvariantCulture)} s ({rate.ToString("F1", CultureInfo.InvariantCulture)} steps/s)"
            + (status.Message is { } m ? $"; {m}" : ""));
    }

    /// <summary>JSON has no NaN or Infinity; they are written as null.</summary>
    private static string Number(double value) =>
        double.IsFinite(value) ? value.ToString("R", CultureInfo.InvariantCulture) : "null";
}
