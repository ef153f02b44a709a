using Trainer.Abstractions;
using Trainer.Client;
using Trainer.Core;

namespace Trainer.Cluster.Tests;

/// <summary>
/// The client rides out a silo failure: transient cluster errors are retried, answers about the
/// request are not, and only the user's own cancellation stops the retries.
/// </summary>
public sealed class ClusterRetryTests
{
    [Fact]
    public async Task AnOrleansCancellation_NotOurs_IsRetriedUntilTheCallSucceeds()
    {
        // What a gateway answers while a dead silo's directory partition is being handed over.
        int calls = 0;
        var retry = new ClusterRetry(TextWriter.Null);
        var answer = await retry.RunAsync(() => ++calls < 3 ? throw new OperationCanceledException() : Task.FromResult(42), CancellationToken.None);
        Assert.Equal(42, answer);
        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task TheUsersCancellation_EndsTheRetriesAtOnce()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        int calls = 0;
        var retry = new ClusterRetry(TextWriter.Null);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            retry.RunAsync<int>(() => { calls++; throw new OperationCanceledException(cancelled.Token); }, cancelled.Token));
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task ARejectedJob_IsNotRetried()
    {
        int calls = 0;
        var retry = new ClusterRetry(TextWriter.Null);
        await Assert.ThrowsAsync<JobRejectedException>(() =>
            retry.RunAsync<int>(() => { calls++; throw new JobRejectedException("steps", "0", "at least 1"); }, CancellationToken.None));
        Assert.Equal(1, calls);
    }
}
