using Trainer.Abstractions;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>--precision float32 jobs: float32 on the wire and in the kernels, float64 at rest.</summary>
[Collection(ClusterCollection.Name)]
public sealed class Float32JobTests(ClusterFixture fixture)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Float32Job_AnyWorkerCount_ReproducesTheSingleProcessFloat32Run_BitForBit(int workers)
    {
        var spec = Jobs.Small(workers) with { Precision = Precision.Float32 };

        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token);

        var expected = Jobs.Local(spec);
        Assert.Equal(JobState.Completed, status.State);
        Assert.Equal(Precision.Float32, status.Spec!.Precision);
        Assert.Equal(expected.Losses, losses);
        var parameters = (await fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync()).ToArray();
        Assert.Equal(expected.Parameters, parameters);
        // Stored as float64, but every value is a float32 widened exactly.
        Assert.All(parameters, v => Assert.Equal(v, (double)(float)v));
        // And it really trained in float32: the float64 run ends elsewhere.
        Assert.NotEqual(Jobs.Local(spec with { Precision = Precision.Float64 }).Losses[^1], losses[^1]);
    }

    [Fact]
    public async Task Float32Job_WithTheAutogradEngine_IsRejected_NamingPrecision()
    {
        var spec = Jobs.Small(workers: 2) with { Precision = Precision.Float32, Engine = Engine.Autograd };

        var error = await Assert.ThrowsAsync<JobRejectedException>(() => fixture.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId()).SubmitAsync(Jobs.Synthetic(spec)));

        Assert.Equal("precision", error.Field);
        Assert.Contains("--engine hand", error.Message);
    }
}
