using Orleans.TestingHost;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>Three in-memory silos shared by the tests of one collection (tests that kill silos make their own).</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public const int Silos = 3;

    public InProcessTestCluster Cluster { get; private set; } = null!;

    public IClusterClient Client => Cluster.Client;

    public static InProcessTestCluster Build(int silos)
    {
        var builder = new InProcessTestClusterBuilder((short)silos);
        builder.ConfigureSilo((_, silo) => silo.AddTrainer());
        return builder.Build();
    }

    public async ValueTask InitializeAsync()
    {
        Cluster = Build(Silos);
        await Cluster.DeployAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "three-silo cluster";
}
