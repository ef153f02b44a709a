using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Storage;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// A job's storage format: its record (<see cref="JobRecord"/>), the sealed chunks of its losses
/// (<see cref="StoredLosses"/>), whole-model tensors too large for one chunk (<see cref="StoredTensors"/>)
/// and its uploaded samples (<see cref="JobData"/>). The job grain decides what to keep and when;
/// this class decides how it lands in storage, so that a stored record never names a chunk that
/// storage lacks. Lives inside one job grain activation, the record's only writer.
/// </summary>
internal sealed class JobStore(
    IPersistentState<JobRecord> record, IPersistentState<JobData> data, IGrainStorage storage, GrainId grain, string jobId, int chunkBytes, ILogger logger)
{
    private readonly StoredLosses _storedLosses = new(storage, grain);
    private readonly StoredTensors _storedTensors = new(storage, grain, chunkBytes);
    // Chunks of losses known to be in storage (see WriteRecord).
    private int _chunksStored;
    // The chunked tensors the stored record names (at most a checkpoint's, its best ones and the final ones, each model state's slots too).
    private List<(TensorPayload Payload, StoredTensor Where)> _storedParameters = [];
    private int _nextSlot;

    /// <summary>The record as last read or written; the grain sets its status and fixed fields before a write.</summary>
    public JobRecord Record => record.State;

    /// <summary>Whether samples uploaded with the submission are stored (until the job ends).</summary>
    public bool HasData => data.State.Data is not null;

    /// <summary>Fills <paramref name="losses"/> with the stored history: the sealed chunks, then the record's own.</summary>
    public async Task ReadLossesAsync(LossHistory losses)
    {
        var parts = new List<byte[]>();
        for (int chunk = 0; chunk < record.State.SealedLossChunks; chunk++)
            parts.Add(await _storedLosses.ReadAsync(chunk, record.State.LossChunkSteps));
        parts.Add(record.State.Losses);
        losses.Load(parts);
        _chunksStored = record.State.SealedLossChunks;
    }

    /// <summary>The uploaded samples, whole (null: synthetic data).</summary>
    public async Task<DatasetPayload?> ReadDataAsync() =>
        data.State.Data is { } sizes && data.State.StoredInputs is { } x && data.State.StoredTargets is { } y
            ? sizes with { X = await _storedTensors.ReadAsync(x), Y = await _storedTensors.ReadAsync(y) }
            : data.State.Data;

    /// <summary>The record's checkpoint as the record holds it (tensors that went to storage in chunks null), its slots apart.</summary>
    public ParameterState? Checkpoint => record.State.Checkpoint?.WithSlotsApart();

    /// <summary>The record's checkpoint with its tensors (and early stopping's best ones), read from their chunks when stored apart.</summary>
    public async Task<ParameterState?> ReadCheckpointAsync()
    {
        var checkpoint = record.State.Checkpoint;
        if (checkpoint is null) return null;
        if (record.State.StoredCheckpointParameters is { } stored) checkpoint = checkpoint with { Parameters = await ReadStoredAsync(stored) };
        if (record.State.StoredCheckpointSlots is { } slots) checkpoint = checkpoint with { Slots = await ReadStoredAsync(slots) };
        if (record.State.StoredCheckpointBest is { } best) checkpoint = checkpoint with { Best = await ReadStoredAsync(best) };
        return checkpoint.WithSlotsApart();
    }

    /// <summary>The record's final model state when the record holds it (null: none, or stored apart: <see cref="ReadFinalAsync"/>).</summary>
    public ModelState? Final => record.State.FinalParameters is { } parameters ? FinalOf(parameters, record.State.FinalSlots) : null;

    /// <summary>The record's final model state, read from its chunks when stored apart (null: the job has none).</summary>
    public async Task<ModelState?> ReadFinalAsync() =>
        Final ?? (record.State.StoredFinalParameters is { } stored
            ? FinalOf(await ReadStoredAsync(stored), record.State.StoredFinalSlots is { } slots ? await ReadStoredAsync(slots) : null)
            : null);

    /// <summary>
    /// The record's final parameters, at the front of its final model state (null: the job has none): from
    /// storage, only the chunks that hold them (a record from before the slots went apart holds the optimizer
    /// state after them); a final model state kept in the record is sliced.
    /// </summary>
    public async Task<TensorPayload?> ReadFinalParametersAsync(int count) =>
        record.State.FinalParameters is { } inline ? (inline.Length > count ? TensorPayload.From(inline.Values[..count]) : inline)
        : record.State.StoredFinalParameters is { } stored ? await _storedTensors.ReadAsync(stored, Math.Min(stored.Bytes, (long)count * sizeof(double)))
        : null;

    // A final model state's tensors; without slots of its own, a record from before they went apart may hold them after the parameters.
    private ModelState FinalOf(TensorPayload parameters, TensorPayload[]? slots) =>
        slots is not null ? new ModelState(parameters, slots)
        : record.State.Status?.Spec is { } spec ? ModelState.Apart(parameters, Trainer.Core.Models.ParameterLayout.For(spec.Model).Count)
        : new ModelState(parameters);

    private async Task<TensorPayload> ReadStoredAsync(StoredTensor stored)
    {
        var payload = await _storedTensors.ReadAsync(stored);
        _storedParameters.Add((payload, stored));
        return payload;
    }

    private async Task<TensorPayload[]> ReadStoredAsync(StoredTensor[] stored)
    {
        var payloads = new TensorPayload[stored.Length];
        for (int i = 0; i < stored.Length; i++) payloads[i] = await ReadStoredAsync(stored[i]);
        return payloads;
    }

    /// <summary>
    /// Starts writing the record, after the chunks of losses that filled up since the last write; the
    /// record keeps the losses after them. Takes what it writes at once (the steps go on meanwhile),
    /// and writes the record only once its chunks are in storage, so a stored record never counts a
    /// chunk that storage lacks. Tensors larger than one chunk (the checkpoint's, the final ones: the
    /// parameters and each optimizer-state slot)
    /// go to storage in chunks first too (<see cref="StoredTensors"/>), under a new number each time,
    /// and the chunks the stored record no longer names are cleared once it is stored.
    /// </summary>
    public Task WriteRecord(LossHistory losses, ParameterState? checkpoint, ModelState? final)
    {
        int chunkSteps = record.State.LossChunkSteps;
        int sealedChunks = chunkSteps > 0 ? losses.Count / chunkSteps : 0;
        int first = Math.Min(_chunksStored, sealedChunks);
        var chunks = new byte[sealedChunks - first][];
        for (int i = 0; i < chunks.Length; i++) chunks[i] = losses.ToBytes((first + i) * chunkSteps, chunkSteps);
        var rest = losses.ToBytes(sealedChunks * chunkSteps, losses.Count - sealedChunks * chunkSteps);
        return WriteAsync();

        async Task WriteAsync()
        {
            for (int i = 0; i < chunks.Length; i++) await _storedLosses.WriteAsync(first + i, chunks[i]);
            _chunksStored = sealedChunks;
            var storedCheckpoint = await StoreAsync(checkpoint?.Parameters);
            var storedCheckpointSlots = await StoreSlotsAsync(checkpoint?.Slots, storedCheckpoint is not null);
            var storedBest = await StoreAsync(checkpoint?.Best);
            var storedFinal = await StoreAsync(final?.Parameters);
            var storedFinalSlots = await StoreSlotsAsync(final?.Slots, storedFinal is not null);
            record.State.SealedLossChunks = sealedChunks;
            record.State.Losses = rest;
            record.State.Checkpoint = checkpoint is null ? null : checkpoint with
            {
                Parameters = storedCheckpoint is null ? checkpoint.Parameters : null,
                Slots = storedCheckpointSlots is null ? checkpoint.Slots : null,
                Best = storedBest is null ? checkpoint.Best : null,
            };
            record.State.StoredCheckpointParameters = storedCheckpoint?.Where;
            record.State.StoredCheckpointSlots = storedCheckpointSlots?.Select(stored => stored.Where).ToArray();
            record.State.StoredCheckpointBest = storedBest?.Where;
            record.State.FinalParameters = storedFinal is null ? final?.Parameters : null;
            record.State.FinalSlots = storedFinal is null ? final?.Slots : null;
            record.State.StoredFinalParameters = storedFinal?.Where;
            record.State.StoredFinalSlots = storedFinalSlots?.Select(stored => stored.Where).ToArray();
            await record.WriteOwnedStateAsync();
            var named = new[] { storedCheckpoint, storedBest, storedFinal }.OfType<(TensorPayload Payload, StoredTensor Where)>()
                .Concat(storedCheckpointSlots ?? []).Concat(storedFinalSlots ?? []).ToList();
            foreach (var stale in _storedParameters.Except(named))
            {
                try { await _storedTensors.ClearAsync(stale.Where); }
                catch (Exception e) { logger.LogWarning("Job {Job}: stale parameter chunks {Slot} could not be cleared: {Error}", jobId, stale.Where.Slot, e.Message); }
            }
            _storedParameters = named;
        }
    }

    /// <summary>
    /// Writes <paramref name="tensor"/> to storage in chunks when larger than one, or <paramref name="always"/>
    /// (null: it stays in the record), under a number no stored record names; the same tensor already stored is not written again.
    /// </summary>
    private async Task<(TensorPayload Payload, StoredTensor Where)?> StoreAsync(TensorPayload? tensor, bool always = false)
    {
        if (tensor is null || (!always && tensor.Bytes.Length <= _storedTensors.ChunkBytes)) return null;
        foreach (var stored in _storedParameters)
            if (ReferenceEquals(stored.Payload, tensor)) return stored;
        int slot = Math.Max(_nextSlot, 1 + RecordTensors().Select(stored => stored.Slot).DefaultIfEmpty(0).Max());
        _nextSlot = slot + 1;
        return (tensor, await _storedTensors.WriteAsync(slot, tensor));
    }

    /// <summary>A model state's optimizer-state slots: to storage in chunks with its parameters (<paramref name="apart"/>), else null (they stay in the record).</summary>
    private async Task<(TensorPayload Payload, StoredTensor Where)[]?> StoreSlotsAsync(TensorPayload[]? slots, bool apart)
    {
        if (slots is not { Length: > 0 } || !apart) return null;
        var stored = new (TensorPayload, StoredTensor)[slots.Length];
        for (int k = 0; k < slots.Length; k++) stored[k] = (await StoreAsync(slots[k], always: true))!.Value;
        return stored;
    }

    // Every tensor the record names in storage.
    private IEnumerable<StoredTensor> RecordTensors() =>
        new[] { record.State.StoredCheckpointParameters, record.State.StoredCheckpointBest, record.State.StoredFinalParameters }.OfType<StoredTensor>()
            .Concat(record.State.StoredCheckpointSlots ?? []).Concat(record.State.StoredFinalSlots ?? []);

    /// <summary>Stores the uploaded samples, once: in the state when they fit one chunk, otherwise in chunks that the state names.</summary>
    public async Task WriteDataAsync(DatasetPayload samples)
    {
        bool large = Math.Max(samples.X.Bytes.Length, samples.Y.Bytes.Length) > _storedTensors.ChunkBytes;
        data.State.StoredInputs = large ? await _storedTensors.WriteAsync(StoredTensors.Inputs, samples.X) : null;
        data.State.StoredTargets = large ? await _storedTensors.WriteAsync(StoredTensors.Targets, samples.Y) : null;
        data.State.Data = large ? samples.WithoutSamples() : samples;
        await data.WriteOwnedStateAsync();
    }

    public async Task ClearDataAsync()
    {
        foreach (var stored in new[] { data.State.StoredInputs, data.State.StoredTargets })
            if (stored is not null) await _storedTensors.ClearAsync(stored);
        await data.ClearStateAsync();
    }
}
