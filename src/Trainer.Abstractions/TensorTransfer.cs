using Orleans.Concurrency;
using Orleans.Runtime;

namespace Trainer.Abstractions;

/// <summary>
/// A tensor inside a message that must stay under the cluster's message limit: inline when it fits
/// one chunk (<see cref="WireLimits.ChunkBytesFor"/>), otherwise a reference to the grain that holds
/// it (<see cref="Source"/>, offer <see cref="Offer"/>), which the receiver reads in chunks of at most
/// one chunk each (<see cref="ReceiveAsync"/>). Small tensors (the seed job's 808 KB) keep their
/// single message; a 50M-parameter model's 400 MB travels as 25 messages of 16 MB.
/// </summary>
/// <remarks>
/// NOTE: pulled, not pushed: the holder already keeps the tensor (a checkpoint, the parameters the
/// workers must load, a worker's share), so an offer costs it no copy, and the reader sizes the
/// chunks to its own message limit. Orleans' message limit is checked on both ends and an
/// oversized frame tears the connection down, so every whole-model message goes this way.
/// </remarks>
[GenerateSerializer, Immutable, Alias("trainer.tensor-transfer")]
public sealed record TensorTransfer(
    [property: Id(0)] TensorPayload? Inline,
    [property: Id(1)] ITensorSource? Source,
    [property: Id(2)] long Offer,
    [property: Id(3)] long Bytes)
{
    /// <summary>Inline, as one message.</summary>
    public static TensorTransfer Of(TensorPayload payload) => new(payload, null, 0, payload.Bytes.Length);

    /// <summary>Whether the receiver must read it from its holder.</summary>
    public bool ByReference => Inline is null;

    /// <summary>The tensor: inline, or read from its holder in chunks of at most <paramref name="maxChunkBytes"/> and checked to be whole.</summary>
    public async Task<TensorPayload> ReceiveAsync(int maxChunkBytes, CancellationToken cancellation = default)
    {
        if (Inline is { } inline) return inline;
        var source = Source ?? throw new InvalidOperationException("A tensor sent by reference names no holder.");
        var assembly = new TensorAssembly(Bytes);
        // NOTE: one chunk per message: Orleans batches up to 100 ready items into one answer by default.
        await foreach (var chunk in source.ReadOfferAsync(Offer, maxChunkBytes).WithBatchSize(1).WithCancellation(cancellation))
            assembly.Add(chunk);
        return assembly.Take();
    }
}

/// <summary>Bytes [Offset, Offset + Bytes.Length) of a tensor of <see cref="TotalBytes"/> bytes.</summary>
[GenerateSerializer, Immutable, Alias("trainer.tensor-chunk")]
public sealed record TensorChunk(
    [property: Id(0)] long Offset,
    [property: Id(1)] long TotalBytes,
    [property: Id(2)] byte[] Bytes)
{
    /// <summary><paramref name="whole"/> cut into chunks of at most <paramref name="chunkBytes"/>, each a copy (a message needs an array of its own).</summary>
    public static IEnumerable<TensorChunk> Split(TensorPayload whole, int chunkBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkBytes);
        var bytes = whole.Bytes;
        if (bytes.Length == 0) yield return new TensorChunk(0, 0, []);
        for (long offset = 0; offset < bytes.Length; offset += chunkBytes)
            yield return new TensorChunk(offset, bytes.Length, bytes.AsSpan((int)offset, (int)Math.Min(chunkBytes, bytes.Length - offset)).ToArray());
    }
}

/// <summary>A grain that serves tensors it offered in a message (<see cref="TensorTransfer"/>) to whoever reads them.</summary>
public interface ITensorSource : IGrain
{
    /// <summary>
    /// The chunks of offer <paramref name="offer"/>, in order, each at most <paramref name="maxChunkBytes"/>;
    /// fails naming the offer when the holder no longer has it (replaced, or its activation was lost).
    /// </summary>
    [AlwaysInterleave]
    IAsyncEnumerable<TensorChunk> ReadOfferAsync(long offer, int maxChunkBytes);
}

/// <summary>Puts a tensor back together from its chunks, which must arrive in order and add up to exactly its length.</summary>
public sealed class TensorAssembly
{
    private readonly byte[] _bytes;
    private long _received;

    public TensorAssembly(long totalBytes)
    {
        if (totalBytes < 0 || totalBytes > WireLimits.MaxTensorBytes)
            throw new ArgumentOutOfRangeException(nameof(totalBytes), totalBytes, $"a tensor may have 0 to {WireLimits.MaxTensorBytes} bytes");
        _bytes = totalBytes == 0 ? [] : GC.AllocateUninitializedArray<byte>((int)totalBytes);
    }

    public long TotalBytes => _bytes.Length;

    public bool Complete => _received == _bytes.Length;

    public void Add(TensorChunk chunk)
    {
        if (chunk.TotalBytes != _bytes.Length || chunk.Offset != _received || chunk.Bytes.Length > _bytes.Length - _received)
            throw new InvalidOperationException(
                $"A chunk of bytes [{chunk.Offset}, {chunk.Offset + chunk.Bytes.Length}) of {chunk.TotalBytes} arrived where bytes from {_received} of {_bytes.Length} were expected.");
        chunk.Bytes.CopyTo(_bytes.AsSpan((int)_received));
        _received += chunk.Bytes.Length;
    }

    /// <summary>The whole tensor; fails when chunks are missing.</summary>
    public TensorPayload Take() =>
        Complete ? new TensorPayload(_bytes)
            : throw new InvalidOperationException($"Only {_received} of the tensor's {_bytes.Length} bytes arrived.");
}
