using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Checkpoints fall on multiples of <see cref="TrainingSpec.CheckpointEvery"/> steps, at most one per
/// <see cref="TrainingSpec.CheckpointMinSeconds"/> of training; where they fall changes no bits. The
/// job's status names the step of its latest checkpoint.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CheckpointScheduleTests(ClusterFixture fixture)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(Parallelism.Data, 0.0, 900)]
    [InlineData(Parallelism.SplitFirstLayer, 0.0, 900)]
    // A floor longer than the job: no checkpoint after the initial parameters.
    [InlineData(Parallelism.Data, 3600.0, 0)]
    [InlineData(Parallelism.SplitFirstLayer, 3600.0, 0)]
    public async Task TheLatestCheckpoint_IsTheLastMultipleOfK_OnlyOnceTheTimeFloorHasPassed_AndTheBitsAreTheSame(Parallelism parallelism, double minSeconds, int latestCheckpoint)
    {
        var spec = Jobs.Small(workers: 2, steps: 1000) with
        {
            Model = new ModelSpec([20, 8, 3], Activation.Sigmoid, LossKind.Sse, false),
            Parallelism = parallelism,
            CheckpointEvery = 100,
            CheckpointMinSeconds = minSeconds,
        };

        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token);

        await Jobs.AssertCompletedAsAsync(fixture.Client, id, status, losses, Jobs.Local(spec));
        Assert.Equal(latestCheckpoint, status.CheckpointStep);
    }
}
