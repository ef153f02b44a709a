using Trainer.Abstractions;

namespace Trainer.Client;

/// <summary>
/// Client calls that outlast a silo failure. When the gateway's silo, or the one holding the job
/// grain, dies, calls fail for the seconds Orleans needs to declare it dead; the job itself carries
/// on (or resumes) in the cluster, so the client retries with bounded back-off instead of giving up.
/// Answers that are about the request (a rejected job, bad input) are never retried.
/// </summary>
/// <remarks>
/// A call that reaches a silo can fail there for a moment too: a job grain's state read from Redis
/// that timed out while the server stalled, and the grain's activation with it. Those are retried
/// the same way; the silo logs the cause.
/// </remarks>
internal sealed class ClusterRetry(TextWriter error)
{
    private static readonly TimeSpan Budget = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(2);

    public async Task<T> RunAsync<T>(Func<Task<T>> call, CancellationToken cancellation)
    {
        var deadline = DateTime.UtcNow + Budget;
        var backoff = TimeSpan.FromMilliseconds(200);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Exception e) when (IsRetryable(e, cancellation) && DateTime.UtcNow + backoff < deadline)
            {
                error.WriteLine($"trainer: the cluster did not answer ({Describe(e)}); retrying");
                await Task.Delay(backoff, cancellation);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }

    /// <summary>
    /// Submits a new job through the same failures: <paramref name="attempt"/> uploads and submits it whole,
    /// each time, told whether an attempt came before it. A submission is not idempotent, but its job id is new
    /// (no other submission uses it): when a later attempt is refused and a job is found under the id, it is this
    /// submission's own, whose answer was lost, not the job; it is returned as started. Otherwise the refusal stands.
    /// </summary>
    public Task<JobStatus> SubmitAsync(ITrainingJobGrain job, Func<bool, Task<JobStatus>> attempt, CancellationToken cancellation)
    {
        int attempts = 0;
        return RunAsync(async () =>
        {
            bool again = attempts++ > 0;
            try
            {
                return await attempt(again);
            }
            catch (JobRejectedException) when (again)
            {
                var status = await job.GetStatusAsync();
                if (status.State != JobState.Unknown) return status;
                throw;
            }
        }, cancellation);
    }

    // The failure's type, and its message's first line where the cluster wrapped it in a plain OrleansException
    // (a storage provider's failure: "Error from storage provider RedisGrainStorage.job during ReadStateAsync ...").
    private static string Describe(Exception e) =>
        e.GetType() == typeof(Orleans.Runtime.OrleansException) && Trainer.Grains.Failures.FirstLine(e.Message) is { Length: > 0 } first ? $"{e.GetType().Name}: {first}" : e.GetType().Name;

    // NOTE: an OperationCanceledException we did not ask for is Orleans' own: a gateway whose grain
    // directory lookup was cut short by a membership change (a silo just declared dead) answers the
    // call with it (seen in CI). Only our own cancellation (Ctrl+C) ends the command. An ArgumentException
    // (SpecException among them) is an answer about the request or a bug, the same on every attempt.
    private static bool IsRetryable(Exception e, CancellationToken cancellation) => e switch
    {
        OperationCanceledException => !cancellation.IsCancellationRequested,
        JobRejectedException or ArgumentException or KeyNotFoundException => false,
        _ => true,
    };
}
