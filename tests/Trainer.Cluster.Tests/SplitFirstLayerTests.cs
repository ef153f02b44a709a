using Trainer.Abstractions;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Jobs that split their first layer's units across the workers (<c>--parallel split</c>) give
/// the single-process split's exact bits on the cluster; with the managed GEMM those are the bits
/// of one worker, whatever the worker count.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SplitFirstLayerTests(ClusterFixture fixture)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    // Every split worker reads the whole batch from the job's dataset grain at once. Rows over one
    // chunk (16 MiB) go by offer; when the requests shared one offer slot, the second replaced the
    // first before it was read, and the first worker waited out its 5-minute call timeout. 20,000
    // rows (125 MB) take long enough to read that the requests overlap every time here; with
    // 2,700 (17 MB) the first read sometimes finished first.
    [Fact]
    public async Task SplitJob_WithUploadedRowsOverOneChunk_TrainsWithoutWaitingOutACallTimeout()
    {
        var spec = new TrainingSpec
        {
            Model = new ModelSpec([784, 16, 10], Activation.Sigmoid, LossKind.Mse),
            Batch = 20_000,
            Steps = 3,
            Workers = 2,
            Seed = 3,
            LearningRate = 1e-2,
            Parallelism = Parallelism.SplitFirstLayer,
        };
        var (submission, samples) = Jobs.UploadedSamples(spec, seed: 11);
        Assert.True(samples.X.Length * sizeof(double) > WireLimits.ChunkBytesFor(WireLimits.DefaultMaxMessageBytes), "the rows must need more than one chunk");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (_, status, losses) = await Jobs.RunAsync(fixture.Client, submission, Token,
            submit: job => job.UploadAndSubmitAsync(submission, WireLimits.ChunkBytesFor(WireLimits.DefaultMaxMessageBytes)));

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(Jobs.Local(spec, samples).Losses, losses);
        // The stall lasted the worker call timeout (5 minutes); the job itself takes seconds.
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(1), $"the job took {clock.Elapsed.TotalSeconds:F0} s");
    }

    [Theory]
    [InlineData(2, LossKind.Sse, false)]
    [InlineData(3, LossKind.Mse, true)]
    [InlineData(8, LossKind.Sse, true)]
    public async Task SplitJob_ReproducesTheSingleProcessRun_BitForBit(int workers, LossKind loss, bool bias)
    {
        var spec = Jobs.Small(workers, steps: 30, loss: loss) with
        {
            Model = new ModelSpec([20, 8, 3], Activation.Tanh, loss, bias),
            Parallelism = Parallelism.SplitFirstLayer,
        };
        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token);
        var expected = Jobs.Local(spec);

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(expected.Losses, losses);
        var parameters = (await fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync()).ToArray();
        Assert.Equal(expected.Parameters, parameters);

        // One worker, data parallel, the batch as one micro-shard: the same bits with the managed GEMM (OpenBLAS tiles differently, so there to rounding).
        var one = Jobs.Local(spec with { Workers = 1, Parallelism = Parallelism.Data, MicroShards = 1 });
        if (Blas.Default is ManagedBlas)
        {
            Assert.Equal(one.Losses, losses);
            Assert.Equal(one.Parameters, parameters);
        }
        else
        {
            Assert.True(Jobs.MaxRelativeError(parameters, one.Parameters) < 1e-12);
        }
    }

    [Fact]
    public async Task Float32SplitJob_ReproducesTheSingleProcessFloat32Run_BitForBit()
    {
        // float32 blocks are half the bytes: the links must carry and place them by the job's element size.
        var spec = Jobs.Small(workers: 3, steps: 30) with { Parallelism = Parallelism.SplitFirstLayer, Precision = Precision.Float32 };
        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token);
        var expected = Jobs.Local(spec);

        await Jobs.AssertCompletedAsAsync(fixture.Client, id, status, losses, expected);
    }

    [Fact]
    public async Task SplitJob_WithMoreWorkersThanFirstLayerUnits_IsRejectedAtSubmission_NamingTheLimit()
    {
        var spec = Jobs.Small(9) with { Parallelism = Parallelism.SplitFirstLayer };
        var e = await Assert.ThrowsAnyAsync<Exception>(() => fixture.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId()).SubmitAsync(Jobs.Synthetic(spec)));
        Assert.Contains("workers: '9'", e.Message);
        Assert.Contains("at most 8 with --parallel split", e.Message);
    }
}
