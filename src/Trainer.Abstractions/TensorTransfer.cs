using Orleans.Concurrency;
using Orleans.Runtime;

namespace Trainer.Abstractions;

/// <summary>
/// A tensor inside a message that must stay under the cluster's message limit: inline when it fits
/// one chunk (<see cref="WireLimits.ChunkBytesFor"/>), otherwise a reference to the grain that holds
/// it (<see cref="Source"/>, offer <see cref="Offer"/>), which the receiver reads in chunks of at most
/// one chunk each (<see cref="ReceiveAsync"/>). Small tensors (the seed job's 808 KB) keep their
/// single message; a 50M-parameter model's 400 MB travels as 25 messages of 16 MB. A reader on the
/// holder's own silo (<see cref="Silo"/>) takes it whole, without a copy: calls within a silo are
/// not serialized, so no limit applies to them.
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
    [property: Id(3)] long Bytes,
    [property: Id(4)] SiloAddress? Silo = null)
{
    /// <summary>Inline, as one message.</summary>
    public static TensorTransfer Of(TensorPayload payload) => new(payload, null, 0, payload.Bytes.Length);

    /// <summary>Whether the receiver must read it from its holder.</summary>
    public bool ByReference => Inline is null;

    /// <summary>
    /// The tensor: inline, or read from its holder in chunks of at most <paramref name="maxChunkBytes"/>
    /// (whole when the reader is on the holder's silo, <paramref name="here"/>) and checked to be whole.
    /// </summary>
    public async Task<TensorPayload> ReceiveAsync(int maxChunkBytes, SiloAddress? here = null, CancellationToken cancellation = default)
    {
        if (Inline is { } inline) return inline;
        var source = Source ?? throw new InvalidOperationException("A tensor sent by reference names no holder.");
        if (here is not null && here.Equals(Silo)) maxChunkBytes = int.MaxValue;
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
    /// <summary>
    /// <paramref name="whole"/> cut into chunks of at most <paramref name="chunkBytes"/>, each a copy (a
    /// message needs an array of its own); one chunk that covers it all shares its (immutable) array.
    /// </summary>
    public static IEnumerable<TensorChunk> Split(TensorPayload whole, int chunkBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkBytes);
        var bytes = whole.Bytes;
        if (bytes.Length <= chunkBytes)
        {
            yield return new TensorChunk(0, bytes.Length, bytes);
            yield break;
        }
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

/// <summary>
/// Puts a tensor back together from its chunks, which must arrive in order and add up to exactly
/// its length. A single chunk that is the whole tensor is taken as it is (no copy).
/// </summary>
public sealed class TensorAssembly
{
    private byte[]? _bytes;
    private long _received;

    public TensorAssembly(long totalBytes)
    {
        if (totalBytes < 0 || totalBytes > WireLimits.MaxTensorBytes)
            throw new ArgumentOutOfRangeException(nameof(totalBytes), totalBytes, $"a tensor may have 0 to {WireLimits.MaxTensorBytes} bytes");
        TotalBytes = totalBytes;
    }

    public long TotalBytes { get; }

    public bool Complete => _received == TotalBytes;

    public void Add(TensorChunk chunk)
    {
        if (chunk.TotalBytes != TotalBytes || chunk.Offset != _received || chunk.Bytes.Length > TotalBytes - _received)
            throw new InvalidOperationException(
                $"A chunk of bytes [{chunk.Offset}, {chunk.Offset + chunk.Bytes.Length}) of {chunk.TotalBytes} arrived where bytes from {_received} of {TotalBytes} were expected.");
        if (_received == 0 && chunk.Bytes.Length == TotalBytes) _bytes = chunk.Bytes;
        else
        {
            _bytes ??= GC.AllocateUninitializedArray<byte>((int)TotalBytes);
            chunk.Bytes.CopyTo(_bytes.AsSpan((int)_received));
        }
        _received += chunk.Bytes.Length;
    }

    /// <summary>The whole tensor; fails when chunks are missing.</summary>
    public TensorPayload Take() =>
        Complete ? new TensorPayload(_bytes ?? [])
            : throw new InvalidOperationException($"Only {_received} of the tensor's {TotalBytes} bytes arrived.");
}
