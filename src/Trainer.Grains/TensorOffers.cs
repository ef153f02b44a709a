using System.Runtime.CompilerServices;
using Orleans.Configuration;
using Orleans.Runtime;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// The tensors a grain offers by reference (<see cref="TensorTransfer"/>), each under a random id, so
/// a reader can never be served another activation's or another offer's bytes. A slot keeps its
/// latest offers only (a new one pushes out the oldest); a tensor that fits one chunk goes inline.
/// </summary>
/// <remarks>
/// An offer holds a reference, not a copy: the holder must not change the tensor (payloads are
/// immutable). An offer made <c>once</c> is withdrawn after one complete read (a share or state
/// read right away); the others stay until pushed out or withdrawn (the parameters every worker
/// reads). A slot may keep more than one so that two readers of the same kind (a checkpoint and a
/// client fetching the weights) do not push each other's offer out mid-read.
/// </remarks>
internal sealed class TensorOffers(ITensorSource self, SiloAddress? silo, int chunkBytes)
{
    private readonly List<Entry> _offers = [];

    private sealed class Entry(string slot, long id, TensorPayload payload, bool once)
    {
        public string Slot => slot;
        public long Id => id;
        public TensorPayload Payload => payload;
        public bool Once => once;
        // Bytes served so far: a once-offer is withdrawn when all its bytes were (readers take ranges in parallel).
        public long Served;
    }

    public int ChunkBytes => chunkBytes;

    /// <summary>The offers of <paramref name="grain"/>, in chunks sized to this silo's message limit.</summary>
    public static TensorOffers For(Grain grain, SiloMessagingOptions messaging) =>
        new(grain.AsReference<ITensorSource>(), grain.GrainContext.Address.SiloAddress, WireLimits.ChunkBytesFor(messaging.MaxMessageBodySize));

    /// <summary><paramref name="payload"/> inline when it fits one chunk, otherwise offered in <paramref name="slot"/>, which keeps its <paramref name="keep"/> latest offers.</summary>
    public TensorTransfer Send(string slot, TensorPayload payload, bool once = false, int keep = 1)
    {
        if (payload.Bytes.Length <= chunkBytes) return TensorTransfer.Of(payload);
        var entry = new Entry(slot, Random.Shared.NextInt64(1, long.MaxValue), payload, once);
        _offers.Add(entry);
        while (_offers.Count(o => o.Slot == slot) > keep) _offers.Remove(_offers.First(o => o.Slot == slot));
        return new TensorTransfer(null, self, entry.Id, payload.Bytes.Length, silo);
    }

    public TensorTransfer? SendOptional(string slot, TensorPayload? payload, bool once = false, int keep = 1) =>
        payload is null ? null : Send(slot, payload, once, keep);

    /// <summary>A model state's optimizer-state slots, each sent as <see cref="Send"/> sends a tensor, in slots under <paramref name="slot"/> (which <see cref="Withdraw"/> withdraws with it).</summary>
    public TensorTransfer[]? SendSlots(string slot, TensorPayload[]? slots, bool once = false, int keep = 1) =>
        slots?.Select((tensor, k) => Send($"{slot}/{k}", tensor, once, keep)).ToArray();

    /// <summary>A tensor sent to this grain: inline, or read from its holder (whole when the holder is on this silo).</summary>
    public Task<TensorPayload> ReceiveAsync(TensorTransfer transfer) => transfer.ReceiveAsync(chunkBytes, silo);

    /// <summary>
    /// A tensor sent to this grain; read from another silo, it is written into the payload <paramref name="into"/>
    /// gives for its size (a buffer the receiver reuses step after step), instead of a new array.
    /// </summary>
    public Task<TensorPayload> ReceiveAsync(TensorTransfer transfer, Func<int, TensorPayload> into) =>
        transfer.ReceiveAsync(chunkBytes, silo, transfer.ByReference && !transfer.HeldOn(silo) && transfer.Bytes <= WireLimits.MaxTensorBytes ? into((int)transfer.Bytes) : null);

    /// <summary>A tensor sent to this grain, handed to <paramref name="sink"/> chunk by chunk (see <see cref="TensorTransfer.ReceiveChunksAsync"/>).</summary>
    public Task ReceiveChunksAsync(TensorTransfer transfer, Action<TensorChunk> sink) => transfer.ReceiveChunksAsync(chunkBytes, silo, sink);

    public async Task<TensorPayload?> ReceiveOptionalAsync(TensorTransfer? transfer) => transfer is null ? null : await ReceiveAsync(transfer);

    public async Task<DatasetPayload?> ReceiveAsync(DatasetTransfer? transfer) => transfer is null ? null
        : new(transfer.Count, transfer.InputSize, transfer.OutputSize, await ReceiveAsync(transfer.X), await ReceiveAsync(transfer.Y), transfer.Storage);

    public Task<ParameterState> ReceiveAsync(ParameterTransfer transfer) => transfer.ReceiveAsync(chunkBytes, silo);

    /// <summary>Forgets the slot's offers, and those of the slots under it (<see cref="SendSlots"/>).</summary>
    public void Withdraw(string slot) => _offers.RemoveAll(o => o.Slot == slot || (o.Slot.StartsWith(slot, StringComparison.Ordinal) && o.Slot.Length > slot.Length && o.Slot[slot.Length] == '/'));

    /// <summary>Bytes [<paramref name="from"/>, <paramref name="to"/>) of an offer in chunks of at most <paramref name="maxChunkBytes"/> (whole, when a reader on this silo asks for that).</summary>
    public async IAsyncEnumerable<TensorChunk> ReadAsync(long offer, int maxChunkBytes, long from, long to, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var entry = _offers.Find(o => o.Id == offer)
            ?? throw new StateLostException($"{self.GetGrainId()} no longer offers tensor {offer} (newer offers replaced it, or the grain was re-activated).");
        // A reader may ask for larger chunks than this silo's limit allows only on this silo (int.MaxValue: whole).
        int size = maxChunkBytes == int.MaxValue ? int.MaxValue : Math.Min(chunkBytes, maxChunkBytes);
        foreach (var chunk in TensorChunk.Split(entry.Payload, size, from, to))
        {
            cancellation.ThrowIfCancellationRequested();
            yield return chunk;
            entry.Served += chunk.Bytes.Length;
        }
        if (entry.Once && entry.Served >= entry.Payload.Bytes.Length) _offers.Remove(entry);
        await Task.CompletedTask;
    }
}
