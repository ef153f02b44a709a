using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>How a silo sizes one GEMM's threads from where RankPlacement puts a job's workers.</summary>
public class GemmThreadBudgetTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 2)]
    [InlineData(5, 2)]
    [InlineData(3, 4)]
    [InlineData(7, 3)]
    public void RanksOn_CountsTheRanksThePlacementRuleSendsToEachSilo(int workers, int silos)
    {
        for (int index = 0; index < silos; index++)
            Assert.Equal(Enumerable.Range(0, workers).Count(r => r % silos == index), RankPlacementDirector.RanksOn(index, silos, workers));
    }

    [Theory]
    [InlineData(2, 0, 1, 2)]   // W = 1 embedded on 2 cores: both cores for each GEMM
    [InlineData(2, 0, 2, 1)]   // two workers: one core each, no helpers to fight over them
    [InlineData(2, 0, 3, 1)]
    [InlineData(8, 0, 3, 2)]
    [InlineData(8, 1, 1, 1)]   // a fixed Trainer:BlasThreads wins
    [InlineData(2, 4, 2, 4)]
    public void ThreadsPerGemm_ShareTheSilosComputeThreadsAmongItsWorkers(int computeThreads, int configured, int localWorkers, int expected) =>
        Assert.Equal(expected, GemmThreadBudget.For(computeThreads, configured, localWorkers));
}
