using Orleans.Runtime;
using Orleans.Storage;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>Where a job's record keeps a tensor that went to storage in chunks: slot <see cref="Slot"/>, <see cref="Bytes"/> bytes in chunks of <see cref="ChunkBytes"/>.</summary>
[GenerateSerializer, Immutable, Alias("trainer.stored-tensor")]
public sealed record StoredTensor(
    [property: Id(0)] int Slot,
    [property: Id(1)] long Bytes,
    [property: Id(2)] int ChunkBytes)
{
    public int Chunks => (int)((Bytes + ChunkBytes - 1) / ChunkBytes);
}

/// <summary>One chunk of a <see cref="StoredTensor"/>.</summary>
[GenerateSerializer, Alias("trainer.stored-chunk")]
public sealed class StoredChunk
{
    [Id(0)] public byte[] Bytes { get; set; } = [];
}

/// <summary>
/// A job's whole-model tensors (a checkpoint's parameters, the final ones) in grain storage, one
/// state per chunk ("parameters-1-0", "parameters-1-1", ...) under the job grain's id, so that no
/// storage write is larger than one chunk. Every write goes under a number no stored record names
/// (<see cref="JobStore"/> picks it), so a write that fails halfway leaves the stored record whole; uploaded
/// samples go under numbers of their own (<see cref="Inputs"/>, <see cref="Targets"/>). The memory store
/// keeps each chunk as the tensor's own bytes (<see cref="BlockMemoryGrainStorage.WriteSharedAsync"/>).
/// </summary>
/// <remarks>
/// NOTE: before, a 50M-parameter checkpoint was one 400 MB write: one message to a memory store
/// grain, one value in Redis (whose strings stop at 512 MB), and the job's record was the largest
/// object on the silo's heap. Orleans' <c>IPersistentState</c> binds a fixed set of named states,
/// so the chunks go through the storage provider itself, as <see cref="StoredLosses"/> do.
/// </remarks>
internal sealed class StoredTensors(IGrainStorage storage, GrainId grain, int chunkBytes)
{
    // Chunks written at a time: overlaps the store's round trips without holding many chunk copies.
    private const int Parallel = 4;

    // The ETag of every chunk this activation wrote, for the next write or clear of the same state.
    private readonly Dictionary<string, string?> _etags = [];

    public int ChunkBytes => chunkBytes;

    /// <summary>The numbers of a job's uploaded samples (inputs, targets), apart from the parameters' 0, 1, 2, ...</summary>
    public const int Inputs = -1, Targets = -2;

    internal static string StateName(int slot, int chunk) => slot switch
    {
        Inputs => $"inputs-{chunk}",
        Targets => $"targets-{chunk}",
        _ => $"parameters-{slot}-{chunk}",
    };

    public async Task<StoredTensor> WriteAsync(int slot, TensorPayload payload)
    {
        var stored = new StoredTensor(slot, payload.Bytes.Length, chunkBytes);
        foreach (var batch in Enumerable.Range(0, stored.Chunks).Chunk(Parallel))
            await Task.WhenAll(batch.Select(chunk => WriteChunkAsync(StateName(slot, chunk), payload, chunk)));
        return stored;
    }

    public Task<TensorPayload> ReadAsync(StoredTensor stored) => ReadAsync(stored, stored.Bytes);

    /// <summary>The first <paramref name="length"/> bytes of <paramref name="stored"/>, from the chunks that hold them only.</summary>
    public async Task<TensorPayload> ReadAsync(StoredTensor stored, long length)
    {
        if (length < 0 || length > stored.Bytes) throw new ArgumentOutOfRangeException(nameof(length), length, $"a stored tensor has {stored.Bytes} bytes");
        var assembly = new TensorAssembly(length);
        for (int chunk = 0; (long)chunk * stored.ChunkBytes < length; chunk++)
        {
            var state = new GrainState<StoredChunk>(new StoredChunk());
            await storage.ReadStateAsync(StateName(stored.Slot, chunk), grain, state);
            long offset = (long)chunk * stored.ChunkBytes;
            var bytes = state.RecordExists ? state.State?.Bytes : null;
            if (bytes is null || bytes.Length != Math.Min(stored.ChunkBytes, stored.Bytes - offset))
                throw new InvalidOperationException(
                    $"Job {grain}: storage has {(bytes is null ? "nothing" : $"{bytes.Length} bytes")} in chunk {chunk} ({StateName(stored.Slot, chunk)}), which the job's record says holds bytes from {offset} of {stored.Bytes}.");
            _etags[StateName(stored.Slot, chunk)] = state.ETag;
            int wanted = (int)Math.Min(bytes.Length, length - offset);
            assembly.Add(new TensorChunk(offset, length, wanted == bytes.Length ? bytes : bytes.AsSpan(0, wanted).ToArray()));
        }
        return assembly.Take();
    }

    /// <summary>Removes the chunks (a tensor no stored record names any more); failures are the caller's to log.</summary>
    public async Task ClearAsync(StoredTensor stored)
    {
        for (int chunk = 0; chunk < stored.Chunks; chunk++)
        {
            string name = StateName(stored.Slot, chunk);
            var state = new GrainState<StoredChunk>(new StoredChunk()) { ETag = _etags.GetValueOrDefault(name) };
            if (state.ETag is null) await storage.ReadStateAsync(name, grain, state);
            await storage.ClearStateAsync(name, grain, state);
            _etags.Remove(name);
        }
    }

    /// <summary>
    /// Chunk <paramref name="chunk"/> of <paramref name="payload"/>: kept by reference by the memory store (the
    /// tensor's own bytes, no copy: a job's uploaded samples would otherwise sit twice on its silo), copied
    /// into a state of its own for any other. A stale ETag (the state was written by an earlier activation)
    /// is overwritten: the caller owns these states.
    /// </summary>
    private async Task WriteChunkAsync(string name, TensorPayload payload, int chunk)
    {
        int offset = chunk * chunkBytes, count = Math.Min(chunkBytes, payload.Bytes.Length - offset);
        var etag = _etags.GetValueOrDefault(name);
        _etags[name] = storage is BlockMemoryGrainStorage memory
            ? await memory.WriteSharedAsync(name, grain, new SharedBytes(payload.Bytes, offset, count), etag)
            : await storage.OverwriteAsync(name, grain, new StoredChunk { Bytes = payload.Bytes.AsSpan(offset, count).ToArray() }, etag);
    }
}
