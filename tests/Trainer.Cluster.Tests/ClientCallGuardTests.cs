using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using Trainer.Abstractions;
using Trainer.Core.Training;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Silos that guard their internal grains (<see cref="TrainerSilo.GuardInternalGrains"/>, as every
/// trainer-silo does): a client may submit, watch and read a job and list the jobs; its calls to
/// workers, parameter servers, shards, datasets and the registry's bookkeeping are refused, naming
/// the method, while the same grains go on serving each other (the job trains as in one process).
/// </summary>
public sealed class ClientCallGuardTests : IAsyncLifetime
{
    private InProcessTestCluster _cluster = null!;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSilo((_, silo) => silo.AddTrainer().GuardInternalGrains());
        _cluster = builder.Build();
        await _cluster.DeployAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _cluster.StopAllSilosAsync();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task AClient_TrainsReadsAndListsAJob_ThroughTheJobGrain_AsInOneProcess()
    {
        var spec = Jobs.Small(workers: 2, steps: 20) with { Parallelism = Parallelism.SplitFirstLayer };

        var (id, status, losses) = await Jobs.RunAsync(_cluster.Client, Jobs.Synthetic(spec), Token);

        await Jobs.AssertCompletedAsAsync(_cluster.Client, id, status, losses, Jobs.Local(spec));
        Assert.Contains(id, await _cluster.Client.GetGrain<IJobRegistryGrain>(0).ListAsync());
    }

    [Fact]
    public async Task CodeRunningInsideASilo_CallsInternalGrains_AsGrainsDo()
    {
        // A silo's own client: the job supervisor, the dashboard, a grain's work on the thread pool.
        var silo = ((InProcessSiloHandle)_cluster.Silos[0]).ServiceProvider.GetRequiredService<IGrainFactory>();

        Assert.Null(await silo.GetGrain<IDatasetGrain>("inside-job").GetRowsAsync(0, 1));
        Assert.DoesNotContain("inside-job", await silo.GetGrain<IJobRegistryGrain>(0).ListRunningAsync());
    }

    public static TheoryData<string> InternalCalls => [.. Calls.Keys];

    private static readonly Dictionary<string, Func<IGrainFactory, Task>> Calls = new()
    {
        ["IWorkerGrain.PrepareLinksAsync"] = g => g.GetGrain<IWorkerGrain>(0, "guarded-job", null).PrepareLinksAsync(),
        ["IWorkerGrain.ReleaseAsync"] = g => g.GetGrain<IWorkerGrain>(1, "guarded-job", null).ReleaseAsync(),
        ["IParameterServerGrain.GetStateAsync"] = g => g.GetGrain<IParameterServerGrain>("guarded-job").GetStateAsync(),
        ["IParameterShardGrain.ReleaseAsync"] = g => g.GetGrain<IParameterShardGrain>(0, "guarded-job", null).ReleaseAsync(),
        ["IDatasetGrain.GetRowsAsync"] = g => g.GetGrain<IDatasetGrain>("guarded-job").GetRowsAsync(0, 1),
        ["IJobRegistryGrain.RegisterAsync"] = g => g.GetGrain<IJobRegistryGrain>(0).RegisterAsync("guarded-job"),
        ["IJobRegistryGrain.MarkFinishedAsync"] = g => g.GetGrain<IJobRegistryGrain>(0).MarkFinishedAsync("guarded-job"),
    };

    [Theory]
    [MemberData(nameof(InternalCalls))]
    public async Task AClientsCallToAnInternalGrain_IsRefused_NamingTheMethod(string method)
    {
        var error = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Calls[method](_cluster.Client));

        Assert.Contains($"{method} is internal to the Trainer cluster", error.Message);
        Assert.DoesNotContain("guarded-job", await _cluster.Client.GetGrain<IJobRegistryGrain>(0).ListAsync());
    }
}
