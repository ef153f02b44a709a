using System.Globalization;
using System.Text.Json;
using Trainer.Abstractions;
using Trainer.Core.Training;

namespace Trainer.Client;

/// <summary>
/// Follows a job's losses until it ends, showing each step through an <see cref="IProgressReporter"/>
/// (live bar, plain lines or JSON lines), then writes the outcome as a line or, with --json, one JSON
/// object: a final event (which names the optimizer).
/// </summary>
internal sealed class JobWatcher(TextWriter output, TextWriter error, bool json)
{
    private readonly ClusterRetry _retry = new(error);
    // The latest evaluations' accuracy on the test and validation sets, shown beside the steps after them.
    private double? _accuracy, _validationAccuracy;
    private static readonly TimeSpan PollWait = TimeSpan.FromSeconds(1);
    // How much longer than PollWait a poll may take before it is given up and asked again: a poll in flight
    // to a silo that died would otherwise wait out Orleans' 30 s response timeout while the job, recovered
    // on another silo (or finished), moved on. A busy job grain answers well within it.
    private static readonly TimeSpan AnswerSlack = TimeSpan.FromSeconds(4);
    private const int BatchSize = 10_000;
    private static readonly TimeSpan BatchingDelay = TimeSpan.FromMilliseconds(50);

    /// <summary>Watches from <paramref name="fromStep"/> (1 = the start) and returns the final status.</summary>
    public Task<JobStatus> WatchAsync(ITrainingJobGrain job, int fromStep, IProgressReporter progress, CancellationToken cancellation) =>
        progress.ShowWhileAsync(() => FollowAsync(job, fromStep, progress, cancellation));

    private async Task<JobStatus> FollowAsync(ITrainingJobGrain job, int fromStep, IProgressReporter progress, CancellationToken cancellation)
    {
        int next = Math.Max(1, fromStep);
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            int from = next;
            var batch = await _retry.RunAsync(() => job.GetLossesAsync(from, BatchSize, PollWait).WaitAsync(PollWait + AnswerSlack, cancellation), cancellation);
            var status = batch.Status;
            if (status.State == JobState.Unknown) return status;
            var losses = batch.Losses.Values;
            int totalSteps = status.Spec?.Steps ?? 0;
            var elapsed = TimeSpan.FromSeconds(status.TrainingSeconds);
            double rate = Rate(status);
            // A mini-batch job's steps belong to epochs: the display shows which, and the latest accuracies.
            var schedule = status.Spec is { MiniBatches: true } spec ? spec.Schedule() : null;
            var evals = batch.Evals ?? [];
            int nextEval = 0;
            for (int i = 0; i < losses.Length; i++)
            {
                int step = batch.FromStep + i;
                progress.Report(new StepProgress(step, totalSteps, losses[i], elapsed, rate)
                    { Epoch = schedule?.EpochOf(step), TotalEpochs = schedule?.EpochsIn(totalSteps), Accuracy = _accuracy, ValidationAccuracy = _validationAccuracy });
                for (; nextEval < evals.Length && evals[nextEval].Step == step; nextEval++)
                {
                    var eval = evals[nextEval];
                    progress.ReportEval(eval);
                    double? accuracy = double.IsNaN(eval.Accuracy) ? null : eval.Accuracy;
                    if (eval.Split == HeldOutEvaluation.ValidationSplit) _validationAccuracy = accuracy;
                    else _accuracy = accuracy;
                }
            }
            next = batch.FromStep + losses.Length;
            // Terminal and nothing more to read: every loss has been shown.
            if (status.IsTerminal && next > status.StepsCompleted) return status;
            // Let losses pile up a little: one poll per step would compete with the job for its grain.
            if (losses.Length > 0) await Task.Delay(BatchingDelay, cancellation);
        }
    }

    /// <summary>The job's steps per second of training time so far (0 before it has any).</summary>
    private static double Rate(JobStatus status) =>
        status.TrainingSeconds > 0 ? status.StepsCompleted / status.TrainingSeconds : 0;

    /// <param name="test">The trained weights' loss and accuracy on the data's test set, when there is one.</param>
    public void WriteOutcome(JobStatus status, EvalRecord? test = null)
    {
        double seconds = status.TrainingSeconds;
        double rate = Rate(status);
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
            // The GEMM kernel every product ran on (a job trained by an older build's silos has none recorded).
            if (status.Spec?.Gemm is { } gemm) fields.Add($"\"gemm\":{JsonSerializer.Serialize(gemm)}");
            if (Best(status) is { } best)
            {
                fields.Add($"\"stopped_early\":{(best.Stopping.Stopped ? "true" : "false")}");
                fields.Add($"\"best_step\":{best.Stopping.BestStep}");
                fields.Add($"\"best_epoch\":{best.Epoch}");
                fields.Add($"\"best_val_loss\":{Number(best.Stopping.BestLoss)}");
            }
            if (test is not null)
            {
                fields.Add($"\"test_loss\":{Number(test.Loss)}");
                fields.Add($"\"test_accuracy\":{Number(test.Accuracy)}");
                fields.Add($"\"test_samples\":{test.Samples}");
            }
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
        if (Best(status) is { } kept)
            output.WriteLine($"best weights: step {kept.Stopping.BestStep} (epoch {kept.Epoch}), validation loss {kept.Stopping.BestLoss.ToString("G10", CultureInfo.InvariantCulture)}"
                + (kept.Stopping.Stopped ? $"; stopped early, {kept.Stopping.Patience} evaluations without a lower one" : "; they are the job's weights"));
        if (test is not null)
            output.WriteLine($"test: {test.Samples} samples, loss {test.Loss.ToString("G10", CultureInfo.InvariantCulture)}{PlainProgress.Accuracy(test.Accuracy)}");
    }

    /// <summary>Early stopping's best step (and its epoch), whose weights are the job's; null without early stopping or before its first validation.</summary>
    private static (EarlyStopping Stopping, int Epoch)? Best(JobStatus status) =>
        status is { Stopping: { BestStep: > 0 } stopping, Spec: { } spec } ? (stopping, spec.Schedule().EpochOf(stopping.BestStep)) : null;

    /// <summary>JSON has no NaN or Infinity; they are written as null.</summary>
    public static string Number(double value) =>
        double.IsFinite(value) ? value.ToString("R", CultureInfo.InvariantCulture) : "null";
}
