using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Serialization.Serializers;
using Orleans.Storage;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// In-memory grain storage, as Orleans' memory storage keeps it (serialized states in a few
/// store grains, spread over the silos, with the same ETag checks), except that a state crosses
/// to its store grain as one block of bytes, and within a silo is not copied at all. A chunk of a
/// tensor (<see cref="StoredTensors"/>: uploaded samples, checkpoints) is kept as the tensor's own
/// bytes (<see cref="WriteSharedAsync"/>), not a serialized copy: a store grain on the tensor's silo
/// holds the very array the job grain holds, one elsewhere a copy of the chunk.
/// </summary>
/// <remarks>
/// Written by hand because Orleans 10.4's memory storage sends each state as a
/// <c>ReadOnlyMemory&lt;byte&gt;</c>, and its codec provider resolves that type by its open generic
/// (<c>ReadOnlyMemoryCodec&lt;T&gt;</c>), never the registered byte codec: every byte goes out as a
/// field header and a varint. Measured: a seed-job checkpoint of 808 KB became a 2.0 MB message,
/// written through doubling buffers up to 4 MB, and a job silo's large-object heap churned through
/// ~25 MB of such buffers between collections. The same state as a <c>byte[]</c> is block-copied.
/// </remarks>
public sealed class BlockMemoryGrainStorage(IGrainFactory grains, IGrainStorageSerializer serializer, IActivatorProvider activators) : IGrainStorage
{
    /// <summary>How many store grains share the states (Orleans' memory storage default).</summary>
    public const int StoreGrains = 10;

    public static BlockMemoryGrainStorage Create(IServiceProvider services, string name) =>
        ActivatorUtilities.CreateInstance<BlockMemoryGrainStorage>(services);

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        string key = Key(stateName, grainId);
        var stored = await Store(key).ReadAsync(key);
        var state = stored switch
        {
            null => default,
            { Shared: { } shared } => Chunk<T>(key, shared),
            _ => serializer.Deserialize<T>(new BinaryData(stored.Bytes!)),
        };
        grainState.ETag = stored?.ETag;
        grainState.State = state ?? activators.GetActivator<T>().Create();
        grainState.RecordExists = state is not null;
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        string key = Key(stateName, grainId);
        var bytes = AsArray(serializer.Serialize(grainState.State));
        grainState.ETag = await Store(key).WriteAsync(key, new StoredBlock(bytes, grainState.ETag));
        grainState.RecordExists = true;
    }

    /// <summary>
    /// Stores <paramref name="bytes"/>, a chunk of a tensor that no one changes, as state <paramref name="stateName"/>,
    /// which reads as a <see cref="StoredChunk"/> of them, by reference (see the summary). Like
    /// <see cref="PersistentStateExtensions.OverwriteAsync{T}"/>, a stale <paramref name="eTag"/> (written by an earlier
    /// activation) is replaced by the stored one: the caller owns the state. Returns the new ETag.
    /// </summary>
    public async Task<string> WriteSharedAsync(string stateName, GrainId grainId, SharedBytes bytes, string? eTag)
    {
        string key = Key(stateName, grainId);
        var store = Store(key);
        try
        {
            return await store.WriteAsync(key, new StoredBlock(null, eTag, bytes));
        }
        catch (InconsistentStateException)
        {
            return await store.WriteAsync(key, new StoredBlock(null, (await store.ReadAsync(key))?.ETag, bytes));
        }
    }

    // A state kept by reference is a tensor's chunk, and reads as one (its bytes in an array of their own, for the reader to assemble).
    private static T Chunk<T>(string key, SharedBytes shared) => typeof(T) == typeof(StoredChunk)
        ? (T)(object)new StoredChunk { Bytes = shared.ToArray() }
        : throw new InvalidOperationException($"State '{key}' holds a tensor's chunk, not a {typeof(T).Name}.");

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        string key = Key(stateName, grainId);
        await Store(key).DeleteAsync(key, grainState.ETag);
        grainState.ETag = null;
        grainState.RecordExists = false;
        grainState.State = activators.GetActivator<T>().Create();
    }

    /// <summary>What the store holds for state <paramref name="stateName"/> of <paramref name="grainId"/> (tests).</summary>
    internal Task<StoredBlock?> ReadBlockAsync(string stateName, GrainId grainId)
    {
        string key = Key(stateName, grainId);
        return Store(key).ReadAsync(key);
    }

    private static string Key(string stateName, GrainId grainId) => $"{stateName}/{grainId}";

    private IMemoryBlockStoreGrain Store(string key) => grains.GetGrain<IMemoryBlockStoreGrain>(StableHash.ComputeHash(key) % StoreGrains);

    // The serializer's own array when it wrote one of the exact size (ExactSizeStorageSerializer does): no copy.
    private static byte[] AsArray(BinaryData data) =>
        MemoryMarshal.TryGetArray(data.ToMemory(), out var segment) && segment is { Offset: 0, Array: { } array } && array.Length == segment.Count
            ? array
            : data.ToArray();
}

/// <summary>
/// A stored state's bytes (serialized, or a tensor's chunk as it is: <see cref="Shared"/>) and ETag.
/// Immutable: the store keeps the writer's array, so neither side may change it (the storage serializes
/// every write into a new one; a tensor's chunk is part of a payload, which no one changes).
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.stored-block")]
public sealed record StoredBlock([property: Id(0)] byte[]? Bytes, [property: Id(1)] string? ETag, [property: Id(2)] SharedBytes? Shared = null);

/// <summary>Holds serialized grain states for <see cref="BlockMemoryGrainStorage"/>.</summary>
[Alias("trainer.memory-block-store")]
public interface IMemoryBlockStoreGrain : IGrainWithIntegerKey
{
    /// <summary>The state under <paramref name="key"/>; null if never written or deleted.</summary>
    /// <remarks>Reads and writes may carry a whole model's parameters (400 MB at 50M), hence the job calls' 10-minute timeout.</remarks>
    [ResponseTimeout(CallTimeouts.Long)]
    Task<StoredBlock?> ReadAsync(string key);

    /// <summary>Stores <paramref name="block"/>'s bytes if its ETag is the stored one; answers the new ETag.</summary>
    [ResponseTimeout(CallTimeouts.Long)]
    Task<string> WriteAsync(string key, StoredBlock block);

    /// <summary>Forgets the bytes under <paramref name="key"/> (remembering that it existed) if <paramref name="eTag"/> is the stored one.</summary>
    Task DeleteAsync(string key, string? eTag);
}

/// <summary>
/// The ETag rules of Orleans' memory storage grain: a key never written (or lost with the store's
/// silo) accepts any write; a deleted key accepts a write without an ETag; otherwise the ETag must
/// match, or be "*". A mismatch is an <see cref="InconsistentStateException"/>, as Orleans' memory storage reports it.
/// </summary>
[KeepAlive]
internal sealed class MemoryBlockStoreGrain : Grain, IMemoryBlockStoreGrain
{
    private readonly Dictionary<string, StoredBlock> _store = [];

    public Task<StoredBlock?> ReadAsync(string key) =>
        Task.FromResult(_store.GetValueOrDefault(key) is { } stored && (stored.Bytes is not null || stored.Shared is not null) ? stored : null);

    public Task<string> WriteAsync(string key, StoredBlock block)
    {
        Check(key, block.ETag, "write");
        string eTag = Guid.NewGuid().ToString("N");
        _store[key] = block with { ETag = eTag };
        return Task.FromResult(eTag);
    }

    public Task DeleteAsync(string key, string? eTag)
    {
        Check(key, eTag, "delete");
        _store[key] = new StoredBlock(null, "");
        return Task.CompletedTask;
    }

    private void Check(string key, string? received, string operation)
    {
        if (!_store.TryGetValue(key, out var current)) return;
        if (current.ETag is "" && received is null) return;
        if (received == current.ETag || received == "*") return;
        throw new InconsistentStateException($"ETag mismatch on {operation} of '{key}': stored {current.ETag}, received {received ?? "none"}", current.ETag, received);
    }
}
