using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// The seed job on data and initial weights written by an independent numpy implementation
/// (tests/reference/seed/make_reference.py), trained through the whole cluster path, gives
/// numpy's loss trajectory and final weights.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class NumpyReferenceThroughClusterTests(ClusterFixture fixture)
{
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task SeedJob_OnNumpysDataAndWeights_MatchesNumpyTo1e9(int workers)
    {
        var x = Read("x.npy");
        var y = Read("y.npy");
        var w1 = Read("w1.npy");
        var w2 = Read("w2.npy");
        var expectedLosses = Read("losses.npy").Data;
        var spec = new TrainingSpec { Batch = x.Shape[0], Steps = expectedLosses.Length, Workers = workers };
        var data = new DatasetPayload(x.Shape[0], x.Shape[1], y.Shape[1], TensorPayload.From(x.Data), TensorPayload.From(y.Data));
        var initial = TensorPayload.From([.. w1.Data, .. w2.Data]);

        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, new JobSubmission(spec, data, initial, "numpy reference", "numpy reference"), TestContext.Current.CancellationToken);

        Assert.Equal(JobState.Completed, status.State);
        Assert.True(Jobs.MaxRelativeError(losses, expectedLosses) < 1e-9);
        var layout = ParameterLayout.For(spec.Model);
        var final = (await fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync()).Values;
        AssertClose(layout["w1"].Of(final), Read("w1_final.npy").Data);
        AssertClose(layout["w2"].Of(final), Read("w2_final.npy").Data);
    }

    /// <summary>Relative to the matrix's largest entry, so entries near zero do not dominate.</summary>
    private static void AssertClose(ReadOnlySpan<double> actual, double[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(Math.Abs), worst = 0;
        for (int i = 0; i < actual.Length; i++) worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]));
        Assert.True(worst / scale < 1e-9, $"max |difference| / max |w| = {worst / scale:E3}");
    }

    private static NpyArray Read(string file)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "reference", "seed", file);
        using var stream = File.OpenRead(path);
        return Npy.Read(stream, path);
    }
}
