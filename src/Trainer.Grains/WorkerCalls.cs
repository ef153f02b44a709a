using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// The parameter server's calls to its job's workers: a call that fails for the infrastructure is
/// made again, and one without an answer for a while is probed, so that neither a dead silo nor a
/// message lost on the way fails or stalls a step (docs/operations.md, "Timeouts").
/// </summary>
internal sealed class WorkerCalls(IGrainFactory grains, string jobId, TrainerOptions options, ILogger logger)
{
    public IWorkerGrain Worker(int rank) => grains.GetGrain<IWorkerGrain>(rank, jobId);

    /// <summary>
    /// A worker call that fails because its silo died is retried with doubling back-off until the
    /// retry budget is spent; Orleans re-activates the worker on a surviving silo once the dead one
    /// is declared dead. Results are matched by rank and step, so a late or duplicate answer can
    /// never be counted twice: each rank contributes exactly one result per step.
    /// </summary>
    public async Task<ShardGradient> ComputeAsync(int rank, WorkRequest request)
    {
        var result = await CallAsync(rank, request.Step, worker => worker.ComputeAsync(request));
        return result.Rank != rank || result.Step != request.Step
            ? throw new InvalidOperationException($"Worker {rank} answered for rank {result.Rank}, step {result.Step}; expected step {request.Step}.")
            : result;
    }

    /// <param name="probe">Whether the call is one <see cref="IWorkerGrain.ProbeAsync"/> tracks (a step, or a window from <paramref name="step"/>).</param>
    public async Task<T> CallAsync<T>(int rank, int step, Func<IWorkerGrain, Task<T>> call, bool probe = true)
    {
        var backoff = options.RetryBackoff;
        var deadline = DateTime.UtcNow + options.WorkerRetryBudget;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return probe ? await AnswerAsync(rank, step, call(Worker(rank))) : await call(Worker(rank)).WaitAsync(options.WorkerCallTimeout);
            }
            catch (Exception e) when (Failures.Classify(e) == FailureKind.Retry)
            {
                if (DateTime.UtcNow + backoff > deadline)
                    throw new TimeoutException($"worker {rank} of job {jobId} could not be reached for step {step} within {options.WorkerRetryBudget.TotalSeconds:F0} s ({attempt} attempts; last error: {e.Message})", e);
                logger.LogWarning("Job {Job} step {Step}: worker {Rank} failed ({Error}); retry {Attempt} in {Backoff} ms",
                    jobId, step, rank, e.GetType().Name, attempt, backoff.TotalMilliseconds);
                await Task.Delay(backoff);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, options.MaxRetryBackoff.Ticks));
            }
        }
    }

    /// <summary>
    /// The answer to a step call, within <see cref="TrainerOptions.WorkerCallTimeout"/>; the worker is
    /// probed every <see cref="TrainerOptions.WorkerProbeInterval"/> without an answer, and a call it
    /// does not have running at two probes in a row counts as lost: a <see cref="TimeoutException"/>,
    /// which <see cref="CallAsync"/> retries at once (NOTE: seen once after a whole-cluster
    /// restart, where a lost call otherwise stalled the job for the whole call timeout).
    /// </summary>
    private async Task<T> AnswerAsync<T>(int rank, int step, Task<T> call)
    {
        var waited = Stopwatch.StartNew();
        var previous = WorkerCallState.Running;
        while (true)
        {
            var left = options.WorkerCallTimeout - waited.Elapsed;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"worker {rank} of job {jobId} did not answer for step {step} within {options.WorkerCallTimeout.TotalSeconds:F0} s");
            try
            {
                return await call.WaitAsync(left < options.WorkerProbeInterval ? left : options.WorkerProbeInterval);
            }
            catch (TimeoutException) when (!call.IsCompleted)
            {
            }
            if (waited.Elapsed >= options.WorkerCallTimeout) continue;
            var state = await Worker(rank).ProbeAsync(step).WaitAsync(options.WorkerProbeInterval);
            if (state != WorkerCallState.Running && previous != WorkerCallState.Running)
            {
                logger.LogWarning("Job {Job} step {Step}: worker {Rank} has no call for it running ({State}) after {Seconds:F0} s without an answer: the call or its answer was lost; calling again",
                    jobId, step, rank, state, waited.Elapsed.TotalSeconds);
                // Abandoned: a late answer of the lost call is never read (results are matched by rank and step).
                _ = call.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
                throw new TimeoutException($"the call to worker {rank} of job {jobId} for step {step} was lost ({state} at two probes)");
            }
            previous = state;
        }
    }
}
