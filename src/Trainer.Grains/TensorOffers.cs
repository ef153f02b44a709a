using System.Runtime.CompilerServices;
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

    private sealed record Entry(string Slot, long Id, TensorPayload Payload, bool Once);

    public int ChunkBytes => chunkBytes;

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

    /// <summary>A tensor sent to this grain: inline, or read from its holder (whole when the holder is on this silo).</summary>
    public Task<TensorPayload> ReceiveAsync(TensorTransfer transfer) => transfer.ReceiveAsync(chunkBytes, silo);

    public async Task<TensorPayload?> ReceiveOptionalAsync(TensorTransfer? transfer) => transfer is null ? null : await ReceiveAsync(transfer);

    public async Task<ParameterState> ReceiveAsync(ParameterTransfer transfer) =>
        new(transfer.Spec, transfer.StepsCompleted, await ReceiveOptionalAsync(transfer.Parameters), transfer.UploadedData);

    /// <summary>Forgets the slot's offers.</summary>
    public void Withdraw(string slot) => _offers.RemoveAll(o => o.Slot == slot);

    public async IAsyncEnumerable<TensorChunk> ReadAsync(long offer, int maxChunkBytes, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var entry = _offers.Find(o => o.Id == offer)
            ?? throw new InvalidOperationException($"{self.GetGrainId()} no longer offers tensor {offer} (newer offers replaced it, or the grain was re-activated).");
        foreach (var chunk in TensorChunk.Split(entry.Payload, Math.Min(chunkBytes, maxChunkBytes)))
        {
            cancellation.ThrowIfCancellationRequested();
            yield return chunk;
        }
        if (entry.Once) _offers.Remove(entry);
        await Task.CompletedTask;
    }
}
