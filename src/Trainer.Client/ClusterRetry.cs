using Trainer.Abstractions;
using Trainer.Core;

namespace Trainer.Client;

/// <summary>
/// Client calls that outlast a silo failure. When the gateway's silo, or the one holding the job
/// grain, dies, calls fail for the seconds Orleans needs to declare it dead; the job itself carries
/// on (or resumes) in the cluster, so the client retries with bounded back-off instead of giving up.
/// Answers that are about the request (a rejected job, bad input) are never retried.
/// </summary>
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
                error.WriteLine($"trainer: the cluster did not answer ({e.GetType().Name}); retrying");
                await Task.Delay(backoff, cancellation);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }

    // NOTE: an OperationCanceledException we did not ask for is Orleans' own: a gateway whose grain
    // directory lookup was cut short by a membership change (a silo just declared dead) answers the
    // call with it (seen in CI). Only our own cancellation (Ctrl+C) ends the command.
    private static bool IsRetryable(Exception e, CancellationToken cancellation) => e switch
    {
        OperationCanceledException => !cancellation.IsCancellationRequested,
        JobRejectedException or SpecException or KeyNotFoundException => false,
        _ => true,
    };
}
