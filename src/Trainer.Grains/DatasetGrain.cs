using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// Keeps a job's uploaded samples and hands workers their rows, so data crosses the wire once per
/// worker activation instead of once per step.
/// </summary>
[Orleans.Placement.PreferLocalPlacement]
public sealed class DatasetGrain : Grain, IDatasetGrain
{
    private DatasetPayload? _data;

    public Task StoreAsync(DatasetPayload data)
    {
        _data = data;
        return Task.CompletedTask;
    }

    public Task<DatasetPayload?> GetRowsAsync(int start, int count)
    {
        if (_data is null) return Task.FromResult<DatasetPayload?>(null);
        if (start < 0 || count <= 0 || start + count > _data.Count)
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) are outside the dataset's {_data.Count} rows.");
        var x = _data.X.Bytes.AsSpan(start * _data.InputSize * sizeof(double), count * _data.InputSize * sizeof(double)).ToArray();
        var y = _data.Y.Bytes.AsSpan(start * _data.OutputSize * sizeof(double), count * _data.OutputSize * sizeof(double)).ToArray();
        return Task.FromResult<DatasetPayload?>(new DatasetPayload(count, _data.InputSize, _data.OutputSize, new TensorPayload(x), new TensorPayload(y)));
    }

    public Task ReleaseAsync()
    {
        _data = null;
        DeactivateOnIdle();
        return Task.CompletedTask;
    }
}
