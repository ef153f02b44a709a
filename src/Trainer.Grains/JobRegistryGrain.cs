using Orleans.Runtime;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>The jobs submitted to this cluster, in submission order, and which of them still run.</summary>
[OldestSiloPlacement]
public sealed class JobRegistryGrain(
    [PersistentState("registry", StorageNames.Jobs)] IPersistentState<JobRegistryRecord> record)
    : Grain, IJobRegistryGrain
{
    public async Task RegisterAsync(string jobId)
    {
        if (record.State.Jobs.Contains(jobId)) return;
        record.State.Jobs.Add(jobId);
        record.State.Running.Add(jobId);
        await record.WriteOwnedStateAsync();
    }

    public async Task MarkFinishedAsync(string jobId)
    {
        if (record.State.Running.Remove(jobId)) await record.WriteOwnedStateAsync();
    }

    public Task<string[]> ListAsync() => Task.FromResult(record.State.Jobs.ToArray());

    public Task<string[]> ListRunningAsync() => Task.FromResult(record.State.Running.ToArray());
}

[GenerateSerializer, Alias("trainer.job-registry")]
public sealed class JobRegistryRecord
{
    [Id(0)] public List<string> Jobs { get; set; } = [];
    [Id(1)] public List<string> Running { get; set; } = [];
}
