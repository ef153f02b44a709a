using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// Keeps a job's uploaded samples and hands workers their rows, so data crosses the wire once per
/// worker activation instead of once per step. Samples or rows larger than one chunk are read in
/// chunks (<see cref="TensorTransfer"/>): from the job grain when stored here, from here by a worker.
/// </summary>
[Orleans.Placement.PreferLocalPlacement]
public sealed class DatasetGrain(IOptions<SiloMessagingOptions> messaging) : Grain, IDatasetGrain
{
    private DatasetPayload? _data;
    private TensorOffers? _offers;

    private TensorOffers Offers => _offers ??= TensorOffers.For(this, messaging.Value);

    public IAsyncEnumerable<TensorChunk> ReadOfferAsync(long offer, int maxChunkBytes, long from, long to) => Offers.ReadAsync(offer, maxChunkBytes, from, to);

    public async Task StoreAsync(DatasetTransfer data) => _data = await Offers.ReceiveAsync(data);

    public Task<DatasetTransfer?> GetRowsAsync(int start, int count)
    {
        if (_data is null) return Task.FromResult<DatasetTransfer?>(null);
        if (start < 0 || count <= 0 || start + count > _data.Count)
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) are outside the dataset's {_data.Count} rows.");
        var x = _data.X.Bytes.AsSpan(start * _data.InputSize * sizeof(double), count * _data.InputSize * sizeof(double)).ToArray();
        var y = _data.Y.Bytes.AsSpan(start * _data.OutputSize * sizeof(double), count * _data.OutputSize * sizeof(double)).ToArray();
        // Each worker's rows are its own offer, read once (several workers may ask at a time).
        return Task.FromResult<DatasetTransfer?>(new DatasetTransfer(count, _data.InputSize, _data.OutputSize,
            Offers.Send($"inputs-{start}-{count}", new TensorPayload(x), once: true), Offers.Send($"targets-{start}-{count}", new TensorPayload(y), once: true)));
    }

    public Task ReleaseAsync()
    {
        _data = null;
        DeactivateOnIdle();
        return Task.CompletedTask;
    }
}
