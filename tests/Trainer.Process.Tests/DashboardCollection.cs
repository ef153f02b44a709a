namespace Trainer.Process.Tests;

/// <summary>The dashboard tests share one cluster and its running job, and run alone (the page test adds a browser to two silos on 2 cores).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DashboardCollection : ICollectionFixture<DashboardCluster>
{
    public const string Name = "dashboard";
}
