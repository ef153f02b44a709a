using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Storage;
using Orleans.TestingHost;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>Grain storage as a silo's own providers see it, for tests that check what is stored.</summary>
internal static class StoredStates
{
    /// <summary>The grain storage provider <paramref name="name"/> of silo <paramref name="silo"/> (by default: the jobs' records).</summary>
    public static IGrainStorage Storage(InProcessTestCluster cluster, int silo = 0, string name = StorageNames.Jobs) =>
        ((InProcessSiloHandle)cluster.Silos[silo]).ServiceProvider.GetRequiredKeyedService<IGrainStorage>(name);

    /// <summary>The stored state <paramref name="stateName"/> of <paramref name="grain"/>, which must exist.</summary>
    public static async Task<T> ReadAsync<T>(IGrainStorage storage, string stateName, GrainId grain) where T : class, new()
    {
        var state = new GrainState<T>(new T());
        await storage.ReadStateAsync(stateName, grain, state);
        Assert.True(state.RecordExists, $"storage has no '{stateName}' for {grain}");
        return state.State!;
    }
}
