using Orleans.Concurrency;
using Orleans.Runtime;
using Trainer.Core.Memory;

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

    /// <summary>Whether it is read by reference from a holder on <paramref name="silo"/> (a reader there gets the holder's own array).</summary>
    public bool HeldOn(SiloAddress? silo) => Inline is null && silo is not null && silo.Equals(Silo);

    /// <summary>Ranges read at once from a holder on another silo: overlaps one chunk's round trip with the others'.</summary>
    public const int Streams = 4;

    /// <summary>
    /// The tensor: inline, or read from its holder in chunks of at most <paramref name="maxChunkBytes"/>,
    /// <see cref="Streams"/> ranges at a time, and checked to be whole. A reader on the holder's silo
    /// (<paramref name="here"/>) takes it whole in one chunk, which shares the holder's array.
    /// </summary>
    /// <remarks>
    /// NOTE: one range at a time, a 50M-parameter share took 25 sequential round trips of 16 MB
    /// between two silo processes (an IAsyncEnumerable asks for the next item only once the last
    /// one arrived), where one 400 MB message had streamed; parallel ranges keep the link busy.
    /// </remarks>
    public Task<TensorPayload> ReceiveAsync(int maxChunkBytes, SiloAddress? here = null, CancellationToken cancellation = default) =>
        ReceiveAsync(maxChunkBytes, here, into: null, cancellation);

    /// <summary>
    /// The tensor, as <see cref="ReceiveAsync(int, SiloAddress?, CancellationToken)"/> gives it, except that read
    /// from another silo it is written into <paramref name="into"/> (when that has exactly its size) and
    /// <paramref name="into"/> is answered: a reader sent a tensor of the same size every step allocates it
    /// once. Inline, or on the holder's silo, it is the sender's own payload as always, and <paramref name="into"/> is untouched.
    /// </summary>
    public async Task<TensorPayload> ReceiveAsync(int maxChunkBytes, SiloAddress? here, TensorPayload? into, CancellationToken cancellation = default)
    {
        if (Inline is { } inline) return inline;
        var source = Source ?? throw new InvalidOperationException("A tensor sent by reference names no holder.");
        if (HeldOn(here))
        {
            var held = new TensorAssembly(Bytes);
            await ReadRangeAsync(source, held, 0, Bytes, int.MaxValue, cancellation);
            return held.Take();
        }
        if (Bytes > WireLimits.MaxTensorBytes)
            throw new InvalidOperationException($"A tensor of {Bytes} bytes cannot be held in one array (at most {WireLimits.MaxTensorBytes}).");
        var payload = into is not null && into.Bytes.Length == Bytes ? into : new TensorPayload(LargeArrays.NewUninitialized<byte>((int)Bytes));
        await ReadRangesAsync(source, maxChunkBytes, (from, to) => new TensorAssembly(payload.Bytes, from, to), cancellation);
        return payload;
    }

    /// <summary>
    /// Reads the tensor chunk by chunk into <paramref name="sink"/>, which puts each where it belongs (a chunk
    /// knows its offset), and checks that every byte came: no array of the whole tensor is made for it. Chunks
    /// arrive in order within each of up to <see cref="Streams"/> ranges; inline, or on the holder's silo,
    /// there is one chunk, the sender's own array (which the sink must not keep or change).
    /// </summary>
    public async Task ReceiveChunksAsync(int maxChunkBytes, SiloAddress? here, Action<TensorChunk> sink, CancellationToken cancellation = default)
    {
        if (Inline is { } inline)
        {
            sink(new TensorChunk(0, inline.Bytes.Length, inline.Bytes));
            return;
        }
        var source = Source ?? throw new InvalidOperationException("A tensor sent by reference names no holder.");
        if (HeldOn(here)) await ReadRangeAsync(source, new TensorAssembly(Bytes, 0, Bytes, sink), 0, Bytes, int.MaxValue, cancellation);
        else await ReadRangesAsync(source, maxChunkBytes, (from, to) => new TensorAssembly(Bytes, from, to, sink), cancellation);
    }

    /// <summary>Reads the tensor from its holder on another silo, <see cref="Streams"/> ranges at a time, each into the assembly made for it.</summary>
    private Task ReadRangesAsync(ITensorSource source, int maxChunkBytes, Func<long, long, TensorAssembly> assemblyOf, CancellationToken cancellation)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxChunkBytes);
        // Ranges of whole chunks, so every message but the last of each range is a full chunk.
        long chunks = Math.Max(1, (Bytes + maxChunkBytes - 1) / maxChunkBytes);
        int streams = (int)Math.Min(Streams, chunks);
        var ranges = Enumerable.Range(0, streams).Select(i => (From: Math.Min(Bytes, chunks * i / streams * maxChunkBytes), To: Math.Min(Bytes, chunks * (i + 1) / streams * maxChunkBytes)));
        return Task.WhenAll(ranges.Select(range => ReadRangeAsync(source, assemblyOf(range.From, range.To), range.From, range.To, maxChunkBytes, cancellation)));
    }

    /// <summary>Bytes [<paramref name="from"/>, <paramref name="to"/>) from the holder into <paramref name="assembly"/>, checked whole (one chunk when <paramref name="maxChunkBytes"/> is unbounded: a holder on this silo shares its array).</summary>
    private async Task ReadRangeAsync(ITensorSource source, TensorAssembly assembly, long from, long to, int maxChunkBytes, CancellationToken cancellation)
    {
        // NOTE: one chunk per message: Orleans batches up to 100 ready items into one answer by default.
        await foreach (var chunk in source.ReadOfferAsync(Offer, maxChunkBytes, from, to).WithBatchSize(1).WithCancellation(cancellation))
            assembly.Add(chunk);
        assembly.EnsureComplete();
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
    public static IEnumerable<TensorChunk> Split(TensorPayload whole, int chunkBytes) => Split(whole, chunkBytes, 0, whole.Bytes.Length);

    /// <summary>Bytes [<paramref name="from"/>, <paramref name="to"/>) of <paramref name="whole"/>, cut as <see cref="Split(TensorPayload, int)"/> cuts it all.</summary>
    public static IEnumerable<TensorChunk> Split(TensorPayload whole, int chunkBytes, long from, long to)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkBytes);
        var bytes = whole.Bytes;
        if (from < 0 || to > bytes.Length || from > to)
            throw new ArgumentOutOfRangeException(nameof(from), $"bytes [{from}, {to}) are not within the tensor's {bytes.Length}.");
        if (from == 0 && to == bytes.Length && bytes.Length <= chunkBytes)
        {
            yield return new TensorChunk(0, bytes.Length, bytes);
            yield break;
        }
        for (long offset = from; offset < to; offset += chunkBytes)
            yield return new TensorChunk(offset, bytes.Length, bytes.AsSpan((int)offset, (int)Math.Min(chunkBytes, to - offset)).ToArray());
    }
}

/// <summary>A grain that serves tensors it offered in a message (<see cref="TensorTransfer"/>) to whoever reads them.</summary>
public interface ITensorSource : IGrain
{
    /// <summary>
    /// The chunks of bytes [<paramref name="from"/>, <paramref name="to"/>) of offer <paramref name="offer"/>,
    /// in order, each at most <paramref name="maxChunkBytes"/>; fails naming the offer when the holder
    /// no longer has it (replaced, or its activation was lost).
    /// </summary>
    [AlwaysInterleave]
    IAsyncEnumerable<TensorChunk> ReadOfferAsync(long offer, int maxChunkBytes, long from, long to);
}

/// <summary>
/// Puts a tensor (or one range of it) back together from its chunks, which must arrive in order and
/// add up to exactly its length. A single chunk that is the whole tensor is taken as it is (no copy).
/// </summary>
public sealed class TensorAssembly
{
    private byte[]? _bytes;
    private readonly long _from, _to;
    private long _next;
    // Where a sink-fed assembly hands each chunk (it keeps no bytes of its own).
    private readonly Action<TensorChunk>? _sink;

    public TensorAssembly(long totalBytes)
    {
        if (totalBytes < 0 || totalBytes > WireLimits.MaxTensorBytes)
            throw new ArgumentOutOfRangeException(nameof(totalBytes), totalBytes, $"a tensor may have 0 to {WireLimits.MaxTensorBytes} bytes");
        TotalBytes = totalBytes;
        _to = totalBytes;
    }

    /// <summary>Bytes [<paramref name="from"/>, <paramref name="to"/>) of a tensor, written into <paramref name="target"/> (the whole tensor's array, which other ranges fill at the same time).</summary>
    public TensorAssembly(byte[] target, long from, long to)
    {
        if (from < 0 || to > target.Length || from > to)
            throw new ArgumentOutOfRangeException(nameof(from), $"bytes [{from}, {to}) are not within the tensor's {target.Length}.");
        (_bytes, TotalBytes, _from, _next, _to) = (target, target.Length, from, from, to);
    }

    /// <summary>Bytes [<paramref name="from"/>, <paramref name="to"/>) of a tensor of <paramref name="totalBytes"/>, each chunk checked and handed to <paramref name="sink"/> (nothing is kept here).</summary>
    public TensorAssembly(long totalBytes, long from, long to, Action<TensorChunk> sink)
    {
        if (from < 0 || to > totalBytes || from > to)
            throw new ArgumentOutOfRangeException(nameof(from), $"bytes [{from}, {to}) are not within the tensor's {totalBytes}.");
        (_sink, TotalBytes, _from, _next, _to) = (sink, totalBytes, from, from, to);
    }

    public long TotalBytes { get; }

    public bool Complete => _next == _to;

    // A range's messages name its end too; a whole tensor's keep their first form.
    private bool Ranged => _from != 0 || _to != TotalBytes;

    public void Add(TensorChunk chunk)
    {
        if (chunk.TotalBytes != TotalBytes || chunk.Offset != _next || chunk.Bytes.Length > _to - _next)
            throw new InvalidOperationException(
                $"A chunk of bytes [{chunk.Offset}, {chunk.Offset + chunk.Bytes.Length}) of {chunk.TotalBytes} arrived where bytes from {_next}{(Ranged ? $" to {_to}" : "")} of {TotalBytes} were expected.");
        if (_sink is not null) _sink(chunk);
        else if (_bytes is null && chunk.Bytes.Length == TotalBytes) _bytes = chunk.Bytes;
        else
        {
            _bytes ??= LargeArrays.NewUninitialized<byte>((int)TotalBytes);
            chunk.Bytes.CopyTo(_bytes.AsSpan((int)_next));
        }
        _next += chunk.Bytes.Length;
    }

    /// <summary>Fails when chunks are missing.</summary>
    public void EnsureComplete()
    {
        if (Complete) return;
        throw new InvalidOperationException(Ranged
            ? $"Only bytes [{_from}, {_next}) of the range to {_to} of a tensor of {TotalBytes} bytes arrived."
            : $"Only {_next} of the tensor's {TotalBytes} bytes arrived.");
    }

    /// <summary>The whole tensor; fails when chunks are missing.</summary>
    public TensorPayload Take()
    {
        EnsureComplete();
        return new TensorPayload(_bytes ?? []);
    }
}
