using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// An Adam job whose model state (the parameters, m and v) is larger than one .NET array can hold (2 GB)
/// checkpoints, ends, stores its final model state and is resumed, to the single-process run's bits: each
/// state slot travels and is stored as a tensor of its own. Such a job once failed at its first checkpoint,
/// and was then refused above 89,478,482 parameters.
/// </summary>
/// <remarks>
/// The silo runs in this process and holds several GB (the job's buffers, its checkpoints and two final
/// model states in the memory store), so the test runs alone.
/// </remarks>
[Collection(Name)]
public sealed class LargeModelStateTests
{
    public const string Name = "a model state larger than one array, run alone";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AnAdamJobWhoseModelStateIsLargerThanOneArray_CheckpointsEndsAndResumes_ToTheSingleProcessRunsBits()
    {
        // 9000-9943-1: 89,496,943 parameters, 18 thousand more than fit one array beside Adam's m and v. Narrow
        // layers after a wide input keep the compute small; float32 halves the job's own buffers (a model
        // state is float64 whatever the job's precision: 2.1 GB here).
        var spec = new TrainingSpec
        {
            Model = new ModelSpec([9000, 9943, 1]), Optimizer = new() { Kind = OptimizerKind.Adam }, LearningRate = 1e-4,
            Batch = 2, Steps = 3, Workers = 1, Seed = 3, Precision = Precision.Float32, CheckpointEvery = 1, CheckpointMinSeconds = 0,
        };
        int count = ParameterLayout.For(spec.Model).Count;
        Assert.True(3L * count * sizeof(double) > Array.MaxLength, $"{count} parameters");
        var expected = Jobs.Local(spec);
        // The reference's buffers go before the cluster's come.
        GC.Collect();

        var cluster = ClusterFixture.Build(1);
        await cluster.DeployAsync(Token);
        try
        {
            // Two steps, a checkpoint after the first; then a job that resumes it for the third.
            var (first, firstStatus, _) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec with { Steps = 2 }), Token);
            Assert.True(firstStatus.State == JobState.Completed, $"{firstStatus.State}: {firstStatus.Message}");
            Assert.Equal(1, firstStatus.CheckpointStep);
            var record = await StoredStates.ReadAsync<JobRecord>(StoredStates.Storage(cluster), "job", cluster.Client.GetGrain<ITrainingJobGrain>(first).GetGrainId());
            StoredTensor[] final = [record.StoredFinalParameters!, .. record.StoredFinalSlots!];
            Assert.Equal([count * 8L, count * 8L, count * 8L], final.Select(tensor => tensor.Bytes));

            var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec) with { ResumeFrom = first }, Token);

            Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
            Assert.Equal((first, 2), (status.ResumedFrom, status.ResumedAtStep));
            Assert.Equal(expected.Losses, losses);
            var weights = await cluster.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync();
            Assert.Equal(count, weights.Length);
            // (SequenceEqual: the assertion's own comparison of 89M values would take minutes.)
            Assert.True(weights.Values.SequenceEqual(expected.Parameters), "the resumed job's weights differ from the single-process run's");
        }
        finally
        {
            await cluster.StopAllSilosAsync(Token);
            await cluster.DisposeAsync();
        }
    }
}

[CollectionDefinition(LargeModelStateTests.Name, DisableParallelization = true)]
public sealed class LargeModelStateCollection;
