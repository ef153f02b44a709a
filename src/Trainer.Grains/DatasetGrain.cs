using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// Keeps a job's uploaded samples and hands them to each silo that runs the job's grains
/// (<see cref="SiloUploads"/>), so data crosses the wire once per silo instead of once per step.
/// Samples larger than one chunk are read in chunks (<see cref="TensorTransfer"/>): from the job grain
/// when stored here, from here by another silo; a reader on this silo shares the arrays.
/// </summary>
[Orleans.Placement.PreferLocalPlacement]
public sealed class DatasetGrain(IOptions<SiloMessagingOptions> messaging) : Grain, IDatasetGrain
{
    private DatasetPayload? _data;
    private long _version;
    private TensorOffers? _offers;
    private long _requests;

    private TensorOffers Offers => _offers ??= TensorOffers.For(this, messaging.Value);

    public IAsyncEnumerable<TensorChunk> ReadOfferAsync(long offer, int maxChunkBytes, long from, long to) => Offers.ReadAsync(offer, maxChunkBytes, from, to);

    public async Task StoreAsync(DatasetTransfer data)
    {
        var stored = await Offers.ReceiveAsync(data);
        // A job grain on this silo that restores its data sends the arrays it sent before (calls within a silo
        // share them): the same rows, so the silos keep theirs. Anything else is a new version.
        bool same = _data is { } old && stored is not null && ReferenceEquals(old.X.Bytes, stored.X.Bytes) && ReferenceEquals(old.Y.Bytes, stored.Y.Bytes);
        if (!same) _version = Random.Shared.NextInt64(1, long.MaxValue);
        _data = stored;
    }

    public Task<long> GetVersionAsync() => Task.FromResult(_data is null ? 0 : _version);

    public Task<DatasetTransfer?> GetRowsAsync(int start, int count)
    {
        if (_data is null) return Task.FromResult<DatasetTransfer?>(null);
        if (start < 0 || count <= 0 || start + count > _data.Count)
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) are outside the dataset's {_data.Count} rows.");
        // All the rows go as they are stored (offers never change a payload); a range is copied out.
        bool all = start == 0 && count == _data.Count;
        int inputBytes = _data.InputSize * _data.Encoding.Width, targetBytes = _data.OutputSize * sizeof(double);
        var x = all ? _data.X : new TensorPayload(_data.X.Bytes.AsSpan(start * inputBytes, count * inputBytes).ToArray());
        var y = all ? _data.Y : new TensorPayload(_data.Y.Bytes.AsSpan(start * targetBytes, count * targetBytes).ToArray());
        // NOTE: every request gets offers of its own, read once. Workers of a split job (and a factored
        // first layer's workers and parameter server) all ask for the same rows at once; under one slot
        // per range the second request replaced the first's offer before it was read, and that reader
        // waited out its call timeout (5 min) whenever the rows were over one chunk (16 MiB).
        long request = ++_requests;
        return Task.FromResult<DatasetTransfer?>(new DatasetTransfer(count, _data.InputSize, _data.OutputSize,
            Offers.Send($"inputs-{request}", x, once: true), Offers.Send($"targets-{request}", y, once: true), _version, _data.Storage));
    }

    public Task ReleaseAsync()
    {
        _data = null;
        _version = 0;
        DeactivateOnIdle();
        return Task.CompletedTask;
    }
}
