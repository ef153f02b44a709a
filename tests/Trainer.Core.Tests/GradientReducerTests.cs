using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>The reducer adds shard sums in rank order and applies the loss scale once.</summary>
public class GradientReducerTests
{
    [Fact]
    public void Add_RejectsShardsOutOfOrder_SayingWhichIsNext()
    {
        var reducer = new GradientReducer(2, LossKind.Sse, totalSamples: 4, outputs: 1, shards: 2);
        reducer.Reset();
        var e = Assert.Throws<InvalidOperationException>(() => reducer.Add(1, 1.0, [1, 2]));
        Assert.Contains("Shard 1 was added out of order; shard 0 is next", e.Message);
        reducer.Add(0, 1.0, [1, 2]);
        e = Assert.Throws<InvalidOperationException>(() => reducer.Add(0, 1.0, [1, 2]));
        Assert.Contains("shard 1 is next", e.Message);
    }

    [Fact]
    public void Add_RejectsGradientsOfTheWrongSize()
    {
        var reducer = new GradientReducer(3, LossKind.Sse, totalSamples: 4, outputs: 1, shards: 1);
        var e = Assert.Throws<ArgumentException>(() => reducer.Add(0, 1.0, [1, 2]));
        Assert.Contains("Shard 0 sent 2 gradient values, the model has 3", e.Message);
    }

    [Fact]
    public void Mse_IsTheMeanOverTheFullBatch_NotTheMeanOfShardMeans()
    {
        // 5 samples x 2 outputs, shards of 3 and 2 samples: the scale is 1/10 for both.
        const int samples = 5, outputs = 2;
        double[] pred = TestArrays.Normal(samples * outputs, 1), target = TestArrays.Normal(samples * outputs, 2);
        double mean = pred.Zip(target, (p, t) => (p - t) * (p - t)).Average();
        double Sse(int from, int to) => Enumerable.Range(from * outputs, (to - from) * outputs).Sum(i => (pred[i] - target[i]) * (pred[i] - target[i]));

        var reducer = new GradientReducer(1, LossKind.Mse, samples, outputs, shards: 2);
        reducer.Reset();
        reducer.Add(0, Sse(0, 3), [30.0]);
        reducer.Add(1, Sse(3, 5), [20.0]);
        Assert.Equal(mean, reducer.Complete(), 1e-15);
        Assert.Equal(50.0 / (samples * outputs), reducer.Gradient[0], 1e-15);
    }

    [Fact]
    public void Sse_IsThePlainSumOfShards()
    {
        var reducer = new GradientReducer(2, LossKind.Sse, totalSamples: 3, outputs: 1, shards: 2);
        reducer.Reset();
        reducer.Add(0, 1.5, [1, 2]);
        reducer.Add(1, 2.5, [10, 20]);
        Assert.Equal(4.0, reducer.Complete());
        Assert.Equal([11.0, 22.0], reducer.Gradient.ToArray());
    }

    [Fact]
    public void Reset_StartsANewStep()
    {
        var reducer = new GradientReducer(1, LossKind.Sse, totalSamples: 2, outputs: 1, shards: 2);
        reducer.Reset();
        reducer.Add(0, 1, [1]);
        reducer.Add(1, 1, [1]);
        reducer.Complete();
        reducer.Reset();
        reducer.Add(0, 3, [5]);
        reducer.Add(1, 4, [6]);
        Assert.Equal(7.0, reducer.Complete());
        Assert.Equal(11.0, reducer.Gradient[0]);
    }

    [Fact]
    public void Complete_RefusesAStepWithAMissingShard()
    {
        var reducer = new GradientReducer(1, LossKind.Sse, totalSamples: 3, outputs: 1, shards: 3);
        reducer.Reset();
        reducer.Add(0, 1, [1]);
        reducer.Add(1, 1, [1]);
        var e = Assert.Throws<InvalidOperationException>(() => reducer.Complete());
        Assert.Contains("Only 2 of 3 shards were added", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => reducer.Add(3, 1, [1]));
    }
}
