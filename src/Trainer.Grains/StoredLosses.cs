using Orleans.Runtime;
using Orleans.Storage;

namespace Trainer.Grains;

/// <summary>
/// A job's sealed chunks of losses in grain storage, one state per chunk ("losses-0", "losses-1",
/// ...) under the job grain's id. A chunk is written once, when its last step is behind a
/// checkpoint; a later write of the same chunk (a replay after a restore, or a new activation after
/// a write whose record never landed) writes the same bits, since the steps are deterministic.
/// </summary>
/// <remarks>
/// Orleans' <c>IPersistentState</c> binds a fixed set of named states at activation, so the chunks,
/// whose number grows with the job, go through the storage provider itself.
/// </remarks>
internal sealed class StoredLosses(IGrainStorage storage, GrainId grain)
{
    /// <summary>Losses per chunk unless configured: 32 KB of float64, below the large-object heap's 85 KB threshold.</summary>
    public const int DefaultChunkSteps = 4096;

    internal static string StateName(int chunk) => $"losses-{chunk}";

    public async Task<byte[]> ReadAsync(int chunk, int chunkSteps)
    {
        var state = new GrainState<LossChunk>(new LossChunk());
        await storage.ReadStateAsync(StateName(chunk), grain, state);
        var losses = state.RecordExists ? state.State?.Losses : null;
        if (losses is null || losses.Length != chunkSteps * sizeof(double))
            throw new InvalidOperationException(
                $"Job {grain}: storage has {(losses is null ? "nothing" : $"{losses.Length / sizeof(double)} losses")} in loss chunk {chunk}, which the job's record says holds {chunkSteps}.");
        return losses;
    }

    // Written before by this job (see the summary): a stale ETag is overwritten.
    public Task WriteAsync(int chunk, byte[] losses) => storage.OverwriteAsync(StateName(chunk), grain, new LossChunk { Losses = losses }, etag: null);
}
