using Trainer.Abstractions;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>Jobs whose workers compute gradients with the autograd engine instead of the hand-derived backward pass.</summary>
[Collection(ClusterCollection.Name)]
public sealed class AutogradEngineTests(ClusterFixture fixture)
{
    [Fact]
    public async Task AutogradEngine_ThroughTheCluster_GivesTheHandDerivedLosses()
    {
        var hand = Jobs.Small(workers: 3, steps: 40);
        var autograd = hand with { Engine = Engine.Autograd };

        var (_, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(autograd), TestContext.Current.CancellationToken);

        Assert.Equal(JobState.Completed, status.State);
        Assert.True(Jobs.MaxRelativeError(losses, Jobs.Local(hand).Losses) < 1e-10);
    }

    [Fact]
    public async Task GradientPenaltyJob_ThroughTheCluster_IsTheSingleProcessRun_BitForBit()
    {
        var spec = Jobs.Small(workers: 2, steps: 15) with { Engine = Engine.Autograd, GradientPenalty = 0.05 };

        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), TestContext.Current.CancellationToken);

        var expected = Jobs.Local(spec);
        await Jobs.AssertCompletedAsAsync(fixture.Client, id, status, losses, expected);
        // The penalty changes the objective: the same job without it follows another trajectory.
        Assert.NotEqual(Jobs.Local(spec with { GradientPenalty = 0 }).Losses[^1], losses[^1]);
    }
}
