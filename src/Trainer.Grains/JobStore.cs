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
    // The chunked tensors the stored record names (at most a checkpoint's, its best ones and the final ones).
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

    /// <summary>The record's checkpoint with its parameters (and early stopping's best ones), read from their chunks when stored apart.</summary>
    public async Task<ParameterState?> ReadCheckpointAsync()
    {
        var checkpoint = record.State.Checkpoint;
        if (checkpoint is null) return null;
        if (record.State.StoredCheckpointParameters is { } stored) checkpoint = checkpoint with { Parameters = await ReadStoredAsync(stored) };
        if (record.State.StoredCheckpointBest is { } best) checkpoint = checkpoint with { Best = await ReadStoredAsync(best) };
        return checkpoint;
    }

    /// <summary>The record's final tensor, read from its chunks when stored apart (null: the job has none).</summary>
    public async Task<TensorPayload?> ReadFinalAsync() =>
        record.State.FinalParameters ?? (record.State.StoredFinalParameters is { } stored ? await ReadStoredAsync(stored) : null);

    /// <summary>
    /// The record's final parameters, at the front of its final model state (null: the job has none): from
    /// storage, only the chunks that hold them (not the optimizer state after them); a final model state kept
    /// in the record is answered whole.
    /// </summary>
    public async Task<TensorPayload?> ReadFinalParametersAsync(int count) =>
        record.State.FinalParameters ?? (record.State.StoredFinalParameters is { } stored ? await _storedTensors.ReadAsync(stored, Math.Min(stored.Bytes, (long)count * sizeof(double))) : null);

    private async Task<TensorPayload> ReadStoredAsync(StoredTensor stored)
    {
        var payload = await _storedTensors.ReadAsync(stored);
        _storedParameters.Add((payload, stored));
        return payload;
    }

    /// <summary>
    /// Starts writing the record, after the chunks of losses that filled up since the last write; the
    /// record keeps the losses after them. Takes what it writes at once (the steps go on meanwhile),
    /// and writes the record only once its chunks are in storage, so a stored record never counts a
    /// chunk that storage lacks. Tensors larger than one chunk (the checkpoint's, the final ones)
    /// go to storage in chunks first too (<see cref="StoredTensors"/>), under a new number each time,
    /// and the chunks the stored record no longer names are cleared once it is stored.
    /// </summary>
    public Task WriteRecord(LossHistory losses, ParameterState? checkpoint, TensorPayload? final)
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
            var storedBest = await StoreAsync(checkpoint?.Best);
            var storedFinal = await StoreAsync(final);
            record.State.SealedLossChunks = sealedChunks;
            record.State.Losses = rest;
            record.State.Checkpoint = checkpoint is null ? null : checkpoint with
            {
                Parameters = storedCheckpoint is null ? checkpoint.Parameters : null,
                Best = storedBest is null ? checkpoint.Best : null,
            };
            record.State.StoredCheckpointParameters = storedCheckpoint?.Where;
            record.State.StoredCheckpointBest = storedBest?.Where;
            record.State.FinalParameters = storedFinal is null ? final : null;
            record.State.StoredFinalParameters = storedFinal?.Where;
            await record.WriteOwnedStateAsync();
            var named = new[] { storedCheckpoint, storedBest, storedFinal }.OfType<(TensorPayload Payload, StoredTensor Where)>().ToList();
            foreach (var stale in _storedParameters.Except(named))
            {
                try { await _storedTensors.ClearAsync(stale.Where); }
                catch (Exception e) { logger.LogWarning("Job {Job}: stale parameter chunks {Slot} could not be cleared: {Error}", jobId, stale.Where.Slot, e.Message); }
            }
            _storedParameters = named;
        }
    }

    /// <summary>
    /// Writes <paramref name="tensor"/> to storage in chunks when larger than one (null: it stays in
    /// the record), under a number no stored record names; the same tensor already stored is not written again.
    /// </summary>
    private async Task<(TensorPayload Payload, StoredTensor Where)?> StoreAsync(TensorPayload? tensor)
    {
        if (tensor is null || tensor.Bytes.Length <= _storedTensors.ChunkBytes) return null;
        foreach (var stored in _storedParameters)
            if (ReferenceEquals(stored.Payload, tensor)) return stored;
        int slot = Math.Max(_nextSlot, 1 + new[] { record.State.StoredCheckpointParameters, record.State.StoredCheckpointBest, record.State.StoredFinalParameters }.Max(stored => stored?.Slot ?? 0));
        _nextSlot = slot + 1;
        return (tensor, await _storedTensors.WriteAsync(slot, tensor));
    }

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
