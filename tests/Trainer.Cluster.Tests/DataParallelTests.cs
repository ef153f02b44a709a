using Orleans.Runtime;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

[Collection(ClusterCollection.Name)]
public sealed class DataParallelTests(ClusterFixture fixture)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task AnyWorkerCount_ReproducesTheSingleProcessRun_BitForBit(int workers)
    {
        var spec = Jobs.Small(workers);
        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token);
        var expected = Jobs.Local(spec);

        Assert.Equal(JobState.Completed, status.State);
        Assert.Equal(expected.Losses, losses);
        var parameters = await fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync();
        Assert.Equal(expected.Parameters, parameters.ToArray());
    }

    [Theory]
    [InlineData(Parallelism.Data)]
    [InlineData(Parallelism.SplitFirstLayer)]
    public async Task ADivergingJob_WhoseActivationsLeaveExpsRange_StillReproducesTheSingleProcessRun_BitForBit(Parallelism parallelism)
    {
        // lr 1e-3 on 200 samples blows this model up: the loss passes 1e17 by step 5 and the hidden
        // pre-activations leave [-708, 708], where TensorPrimitives' vector exp gives up on a whole vector.
        var spec = Jobs.Small(workers: 3, steps: 12) with { Model = new ModelSpec([200, 400, 10]), Batch = 200, LearningRate = 1e-3, Parallelism = parallelism };
        var expected = Jobs.Local(spec);
        Assert.True(expected.Losses[^1] > 1e15, $"the check needs a job that diverges; final loss {expected.Losses[^1]}");

        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token);

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(expected.Losses, losses);
        Assert.Equal(expected.Parameters, (await fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync()).ToArray());
    }

    [Theory]
    [InlineData(2, LossKind.Sse)]
    [InlineData(3, LossKind.Sse)]
    [InlineData(4, LossKind.Mse)]
    public async Task AnyWorkerCount_GivesTheOneWorkerRunsBits(int workers, LossKind loss)
    {
        // 13 samples in 4 micro-shards (4, 3, 3, 3): 3 workers own 2, 1 and 1 of them.
        var spec = Jobs.Small(workers, loss: loss) with { MicroShards = 4 };
        var (id, _, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token);
        var oneWorker = Jobs.Local(spec with { Workers = 1 });

        Assert.Equal(oneWorker.Losses, losses);
        var parameters = await fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync();
        Assert.Equal(oneWorker.Parameters, parameters.ToArray());
    }

    [Fact]
    public async Task ThreeWorkers_RunOnThreeDifferentSilos()
    {
        var spec = Jobs.Small(workers: 3, steps: 1_000_000);
        var id = Jobs.NewId();
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(id);
        await job.SubmitAsync(Jobs.Synthetic(spec));
        // Wait (by polling the job's own progress, not the clock) until every worker has answered once.
        while ((await job.GetLossesAsync(2, 1, TimeSpan.FromSeconds(5))).Status.StepsCompleted < 2) Token.ThrowIfCancellationRequested();

        var management = fixture.Client.GetGrain<IManagementGrain>(0);
        var silos = new HashSet<SiloAddress>();
        for (int rank = 0; rank < 3; rank++)
        {
#pragma warning disable xUnit1051 // the management grain's lookup takes no cancellation token
            var address = await management.GetActivationAddress(fixture.Client.GetGrain<IWorkerGrain>(rank, id));
#pragma warning restore xUnit1051
            Assert.NotNull(address);
            silos.Add(address);
        }
        await job.CancelAsync();

        Assert.Equal(3, silos.Count);
    }

    [Fact]
    public async Task TwoConcurrentJobs_EachGetTheirSoloResult()
    {
        var first = Jobs.Small(workers: 2, steps: 40);
        var second = Jobs.Small(workers: 3, steps: 30, loss: LossKind.Mse) with { Seed = 99, LearningRate = 5e-4 };

        var runs = await Task.WhenAll(
            Jobs.RunAsync(fixture.Client, Jobs.Synthetic(first), Token),
            Jobs.RunAsync(fixture.Client, Jobs.Synthetic(second), Token));

        Assert.Equal(Jobs.Local(first).Losses, runs[0].Losses);
        Assert.Equal(Jobs.Local(second).Losses, runs[1].Losses);
    }

    [Fact]
    public async Task TenConcurrentJobsWithDifferentSpecs_EachGetTheirSoloResult()
    {
        var specs = Enumerable.Range(0, 10).Select(i => Jobs.Small(workers: 1 + i % 4, steps: 20 + 3 * i, loss: i % 2 == 0 ? LossKind.Sse : LossKind.Mse)
            with { Seed = 100 + i, LearningRate = 5e-4 * (1 + i % 3), Init = InitKind.Xavier, Model = new ModelSpec([20, 4 + i, 3], (Activation)(i % 3), i % 2 == 0 ? LossKind.Sse : LossKind.Mse, bias: i % 3 == 1) }).ToArray();

        // All ten at once on the three silos.
        var runs = await Task.WhenAll(specs.Select(spec => Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token)));

        for (int i = 0; i < specs.Length; i++)
        {
            var expected = Jobs.Local(specs[i]);
            await Jobs.AssertCompletedAsAsync(fixture.Client, runs[i].Id, runs[i].Status, runs[i].Losses, expected);
        }
    }

    [Fact]
    public async Task DivergingJob_StopsWithDivergedAtTheStepItHappened()
    {
        var spec = Jobs.Small(workers: 2, steps: 500) with { LearningRate = 1e6 };

        var (_, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token);

        Assert.Equal(JobState.Diverged, status.State);
        Assert.False(double.IsFinite(losses[^1]));
        Assert.Contains($"diverged at step {losses.Length}", status.Message);
        Assert.True(losses.Length < spec.Steps);
    }
}
