using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// The parameter server's half of a step: <see cref="UpdateBuilder{T}"/> takes shard packs in rank
/// order only, checks their sizes, sums dense slots and shard losses, refuses an incomplete step,
/// and the loss scale (1 for SSE, 1/(N·D_out) for MSE) is applied once over the full batch, to the
/// loss by the builder and to the gradient by <see cref="ReplicaUpdate{T}"/>.
/// </summary>
public class UpdateBuilderTests
{
    /// <summary>A one-layer, bias-free model: its dense pack is just the n_out x n_in weight gradient.</summary>
    private static TrainingSpec Job(int inputs, int outputs, LossKind loss, int batch, int workers) =>
        Exchange.Job(new ModelSpec([inputs, outputs], Activation.Sigmoid, loss), batch, workers);

    private static ExchangePlan Dense(TrainingSpec job) => ExchangePlan.With(job.Model, job.Batch, false);

    /// <summary>The gradient a replica forms from <paramref name="update"/>.</summary>
    private static double[] GradientOf(TrainingSpec job, ExchangePlan plan, double[] update, double[]? batchInputs = null)
    {
        var gradient = new double[plan.Layout.Count];
        new ReplicaUpdate<double>(job, plan, new ManagedBlas()).Gradient(update, batchInputs ?? [], gradient);
        return gradient;
    }

    [Fact]
    public void Add_RejectsShardsOutOfOrder_SayingWhichIsNext()
    {
        var job = Job(2, 1, LossKind.Sse, batch: 4, workers: 2);
        var builder = new UpdateBuilder<double>(job, Dense(job));
        var update = new double[builder.UpdateLength];
        builder.Reset();
        var e = Assert.Throws<InvalidOperationException>(() => builder.Add(1, [1.0], [1, 2], update));
        Assert.Contains("Shard 1 was added out of order; shard 0 is next. Reduce in shard order.", e.Message);
        builder.Add(0, [1.0], [1, 2], update);
        e = Assert.Throws<InvalidOperationException>(() => builder.Add(0, [1.0], [1, 2], update));
        Assert.Contains("Shard 0 was added out of order; shard 1 is next", e.Message);
    }

    [Fact]
    public void Add_RejectsAPackOfTheWrongSize()
    {
        var job = Job(3, 1, LossKind.Sse, batch: 4, workers: 1);
        var builder = new UpdateBuilder<double>(job, Dense(job));
        var update = new double[builder.UpdateLength];
        var e = Assert.Throws<ArgumentException>(() => builder.Add(0, [1.0], [1, 2], update));
        Assert.Contains("Shard 0 sent 2 values; its pack for 4 samples has 3.", e.Message);
    }

    [Fact]
    public void Add_RejectsAFactoredPackOfTheWrongSize_CountingItsSamples()
    {
        // 5 samples over 2 shards (3 + 2) with the layer factored: shard 1's pack is δ, 2 samples x 2 outputs.
        var job = Job(3, 2, LossKind.Sse, batch: 5, workers: 2);
        var builder = new UpdateBuilder<double>(job, ExchangePlan.With(job.Model, job.Batch, true));
        Assert.Equal(6, builder.ShardLength(0));
        Assert.Equal(4, builder.ShardLength(1));
        var update = new double[builder.UpdateLength];
        builder.Reset();
        builder.Add(0, [1.0], new double[6], update);
        var e = Assert.Throws<ArgumentException>(() => builder.Add(1, [1.0], new double[6], update));
        Assert.Contains("Shard 1 sent 6 values; its pack for 2 samples has 4.", e.Message);
    }

    [Fact]
    public void Add_RejectsAnUpdateBufferOfTheWrongSize()
    {
        var job = Job(3, 1, LossKind.Sse, batch: 4, workers: 1);
        var builder = new UpdateBuilder<double>(job, Dense(job));
        var e = Assert.Throws<ArgumentException>(() => builder.Add(0, [1.0], [1, 2, 3], new double[4]));
        Assert.Contains("The update buffer has 4 values; the plan's update has 3.", e.Message);
    }

    [Fact]
    public void Mse_IsTheMeanOverTheFullBatch_NotTheMeanOfShardMeans()
    {
        // 5 samples x 2 outputs, shards of 3 and 2 samples: the scale is 1/10 for both.
        const int samples = 5, outputs = 2;
        double[] pred = TestArrays.Normal(samples * outputs, 1), target = TestArrays.Normal(samples * outputs, 2);
        double mean = pred.Zip(target, (p, t) => (p - t) * (p - t)).Average();
        double Sse(int from, int to) => Enumerable.Range(from * outputs, (to - from) * outputs).Sum(i => (pred[i] - target[i]) * (pred[i] - target[i]));
        double meanOfShardMeans = (Sse(0, 3) / (3 * outputs) + Sse(3, 5) / (2 * outputs)) / 2;
        Assert.True(Math.Abs(meanOfShardMeans - mean) > 1e-3, "the check needs shards whose means differ");

        // A 1-input, 2-output layer: the dense pack is its 2 weight gradients.
        var job = Job(1, outputs, LossKind.Mse, samples, workers: 2);
        var plan = Dense(job);
        var builder = new UpdateBuilder<double>(job, plan);
        var update = new double[builder.UpdateLength];
        builder.Reset();
        builder.Add(0, [Sse(0, 3)], [30.0, 3.0], update);
        builder.Add(1, [Sse(3, 5)], [20.0, 2.0], update);
        Assert.Equal(mean, builder.Complete(), 1e-15);
        Assert.Equal([50.0, 5.0], update);  // the update carries sums; the scale is applied once, by the replica
        var gradient = GradientOf(job, plan, update);
        Assert.Equal(50.0 / (samples * outputs), gradient[0], 1e-15);
        Assert.Equal(5.0 / (samples * outputs), gradient[1], 1e-15);
    }

    [Fact]
    public void Mse_ScalesAFactoredLayerOnceOverTheFullBatch()
    {
        // 1 input, 1 output, 3 samples over 3 shards, the layer factored: each shard sends its δ (one
        // value); the replica forms Σ_s δ_s·x_s over the whole batch and applies 1/(N·D_out) = 1/3 once.
        var job = Job(1, 1, LossKind.Mse, batch: 3, workers: 3);
        var plan = ExchangePlan.With(job.Model, job.Batch, true);
        var builder = new UpdateBuilder<double>(job, plan);
        var update = new double[builder.UpdateLength];
        builder.Reset();
        builder.Add(0, [1.0], [2.0], update);
        builder.Add(1, [4.0], [-4.0], update);
        builder.Add(2, [1.0], [6.0], update);
        Assert.Equal(2.0, builder.Complete());
        Assert.Equal([2.0, -4.0, 6.0], update);  // δ of every sample at its row
        double[] x = [1.0, 0.5, 2.0];
        var gradient = GradientOf(job, plan, update, x);
        Assert.Single(gradient);
        Assert.Equal((2.0 * 1.0 - 4.0 * 0.5 + 6.0 * 2.0) / 3, gradient[0], 1e-15);
    }

    [Fact]
    public void Sse_IsThePlainSumOfShards()
    {
        var job = Job(2, 1, LossKind.Sse, batch: 3, workers: 2);
        var plan = Dense(job);
        var builder = new UpdateBuilder<double>(job, plan);
        var update = new double[builder.UpdateLength];
        builder.Reset();
        builder.Add(0, [1.5], [1, 2], update);
        builder.Add(1, [2.5], [10, 20], update);
        Assert.Equal(4.0, builder.Complete());
        Assert.Equal([11.0, 22.0], update);
        Assert.Equal([11.0, 22.0], GradientOf(job, plan, update));
    }

    [Fact]
    public void Reset_StartsANewStep()
    {
        // The same builder and update buffer over two steps: nothing of the first step leaks into the second.
        var job = Job(1, 1, LossKind.Sse, batch: 2, workers: 2);
        var plan = Dense(job);
        var builder = new UpdateBuilder<double>(job, plan);
        var update = new double[builder.UpdateLength];
        builder.Reset();
        builder.Add(0, [1], [1], update);
        builder.Add(1, [1], [1], update);
        builder.Complete();
        builder.Reset();
        builder.Add(0, [3], [5], update);
        builder.Add(1, [4], [6], update);
        Assert.Equal(7.0, builder.Complete());
        Assert.Equal([11.0], update);
        Assert.Equal([11.0], GradientOf(job, plan, update));
    }

    [Fact]
    public void Reset_AbandonsAHalfBuiltStep()
    {
        var job = Job(1, 1, LossKind.Sse, batch: 2, workers: 2);
        var builder = new UpdateBuilder<double>(job, Dense(job));
        var update = new double[builder.UpdateLength];
        builder.Reset();
        builder.Add(0, [100], [100], update);
        builder.Reset();
        builder.Add(0, [3], [5], update);
        builder.Add(1, [4], [6], update);
        Assert.Equal(7.0, builder.Complete());
        Assert.Equal([11.0], update);
    }

    [Fact]
    public void Complete_RefusesAStepWithAMissingShard()
    {
        var job = Job(1, 1, LossKind.Sse, batch: 3, workers: 3);
        var builder = new UpdateBuilder<double>(job, Dense(job));
        var update = new double[builder.UpdateLength];
        builder.Reset();
        builder.Add(0, [1], [1], update);
        builder.Add(1, [1], [1], update);
        var e = Assert.Throws<InvalidOperationException>(() => builder.Complete());
        Assert.Contains("Only 2 of 3 shards were added; a step needs every shard exactly once.", e.Message);
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => builder.Add(3, [1], [1], update));
        Assert.Contains("Shard 3 does not exist; there are 3.", missing.Message);
        missing = Assert.Throws<ArgumentOutOfRangeException>(() => builder.Add(-1, [1], [1], update));
        Assert.Contains("Shard -1 does not exist; there are 3.", missing.Message);
    }

    [Theory]
    [InlineData(false, 2)]
    [InlineData(false, 3)]
    [InlineData(true, 2)]
    [InlineData(true, 7)]
    public void AddingAShardInParts_InAnyOrder_GivesTheSameBitsAsAddingItWhole(bool factored, int parts)
    {
        // Two layers with biases over 3 uneven shards, so both dense and factored slots are cut at odd places.
        var job = Exchange.Job(new ModelSpec([7, 5, 3], Activation.Tanh, LossKind.Mse, bias: true), batch: 8, workers: 3);
        var plan = ExchangePlan.With(job.Model, job.Batch, factored, factored);
        var whole = new UpdateBuilder<double>(job, plan);
        var cut = new UpdateBuilder<double>(job, plan);
        var expected = new double[whole.UpdateLength];
        var actual = TestArrays.Normal(cut.UpdateLength, 99);   // stale values from an earlier step must not leak in
        whole.Reset();
        cut.Reset();
        for (int rank = 0; rank < 3; rank++)
        {
            var pack = TestArrays.Normal(whole.ShardLength(rank), 10 + rank);
            whole.Add(rank, [rank + 0.5], pack, expected);
            foreach (int part in Enumerable.Range(0, parts).Reverse()) cut.AddPart(rank, pack, actual, part, parts);
            cut.Accept(rank, [rank + 0.5]);
        }
        Assert.Equal(whole.Complete(), cut.Complete());
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 3)]
    [InlineData(3, 5)]
    [InlineData(5, 8)]   // a tree with Merge steps and deeper slots
    public void AddingEveryShardsRange_RangeByRange_InAnyOrder_GivesTheSameBitsAsAddingEachWhole(int workers, int ranges)
    {
        // What a step team's threads do: each takes a range of the model and adds every worker's pack over it.
        var job = Exchange.Job(new ModelSpec([7, 5, 3], Activation.Tanh, LossKind.Mse, bias: true), batch: 16, workers: workers) with { MicroShards = 8 };
        var plan = ExchangePlan.With(job.Model, job.Batch, false, false).WithMicroShards(8);
        var whole = new UpdateBuilder<double>(job, plan);
        var cut = new UpdateBuilder<double>(job, plan);
        var expected = new double[whole.UpdateLength];
        var actual = TestArrays.Normal(cut.UpdateLength, 98);   // stale values from an earlier step must not leak in
        var packs = Enumerable.Range(0, workers).Select(rank => TestArrays.Normal(whole.ShardLength(rank), 20 + rank)).ToArray();
        whole.Reset();
        cut.Reset();
        for (int rank = 0; rank < workers; rank++) whole.Add(rank, new double[plan.RankPack(rank, workers).Blocks.Count], packs[rank], expected);
        foreach (var range in Shard.Split(cut.UpdateLength, ranges).Reverse()) cut.AddRangeOfEach(rank => packs[rank], actual, range.Start, range.Count);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void AddingByRanges_RefusesAPlanWithFactors_AndARangeOutsideTheUpdate()
    {
        var job = Exchange.Job(new ModelSpec([7, 5, 3], Activation.Tanh, LossKind.Mse, bias: true), batch: 8, workers: 2);
        var dense = new UpdateBuilder<double>(job, ExchangePlan.With(job.Model, job.Batch, false, false));
        var update = new double[dense.UpdateLength];
        var outside = Assert.Throws<ArgumentOutOfRangeException>(() => dense.AddRangeOfEach(rank => new double[dense.ShardLength(rank)], update, dense.UpdateLength - 1, 2));
        Assert.Contains($"are not all in the update's {dense.UpdateLength}", outside.Message);
        var factored = new UpdateBuilder<double>(job, ExchangePlan.With(job.Model, job.Batch, true, false));
        var error = Assert.Throws<InvalidOperationException>(() => factored.AddRangeOfEach(rank => new double[factored.ShardLength(rank)], new double[factored.UpdateLength], 0, 1));
        Assert.Contains("A plan with factors", error.Message);
    }

    [Fact]
    public void AddPart_RefusesAPartThatDoesNotExist_AndAShardOutOfOrder()
    {
        var job = Job(3, 1, LossKind.Sse, batch: 4, workers: 2);
        var builder = new UpdateBuilder<double>(job, Dense(job));
        var update = new double[builder.UpdateLength];
        builder.Reset();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => builder.AddPart(0, [1, 2, 3], update, 2, 2));
        Assert.Contains("Part 2 of 2 does not exist.", e.Message);
        builder.AddPart(0, [1, 2, 3], update, 0, 2);
        var order = Assert.Throws<InvalidOperationException>(() => builder.AddPart(1, [1, 2, 3], update, 0, 2));
        Assert.Contains("Shard 1 was added out of order; shard 0 is next.", order.Message);
        order = Assert.Throws<InvalidOperationException>(() => builder.Accept(1, [1.0]));
        Assert.Contains("Shard 1 was added out of order; shard 0 is next.", order.Message);
    }

    [Fact]
    public void BuilderAndReplica_RefuseAPlanForAnotherBatch()
    {
        var job = Job(1, 1, LossKind.Sse, batch: 3, workers: 3);
        var plan = ExchangePlan.With(job.Model, 4, false);
        var e = Assert.Throws<ArgumentException>(() => new UpdateBuilder<double>(job, plan));
        Assert.Contains("The plan is for batches of 4; the job's batches hold 3 samples.", e.Message);
        e = Assert.Throws<ArgumentException>(() => new ReplicaUpdate<double>(job, plan));
        Assert.Contains("The plan is for batches of 4; the job's batches hold 3 samples.", e.Message);
    }

    [Theory]
    [InlineData(LossKind.Mse)]
    [InlineData(LossKind.Sse)]
    public void GradientRange_WritesTheWholeGradientsBits_RangeByRange(LossKind loss)
    {
        // Two dense layers with biases, cut across layer boundaries: the parameter server's parts each build their own range.
        var job = Exchange.Job(new ModelSpec([5, 4, 3], Activation.Sigmoid, loss, bias: true), 6, 2);
        var plan = ExchangePlan.With(job.Model, job.Batch, false, false);
        var update = TestArrays.Normal(plan.Update.Length, seed: 3);
        var whole = GradientOf(job, plan, update);
        var replica = new ReplicaUpdate<double>(job, plan, new ManagedBlas());
        Assert.True(replica.ElementWise);
        var ranges = new double[plan.Layout.Count];
        foreach (var range in Data.Shard.Split(plan.Layout.Count, 4)) replica.GradientRange(update, range, ranges);
        Assert.Equal(whole.Select(BitConverter.DoubleToInt64Bits), ranges.Select(BitConverter.DoubleToInt64Bits));
    }

    [Fact]
    public void GradientRange_RefusesAFactoredPlan_WhoseGradientIsAProductOverTheBatch()
    {
        var job = Job(3, 2, LossKind.Sse, batch: 2, workers: 1);
        var replica = new ReplicaUpdate<double>(job, ExchangePlan.With(job.Model, job.Batch, true), new ManagedBlas());
        Assert.False(replica.ElementWise);
        var e = Assert.Throws<InvalidOperationException>(() => replica.GradientRange(new double[2 * 2 + 2 * 3], new Data.Shard(0, 0, 1), new double[6]));
        Assert.Contains("build it whole", e.Message);
    }
}
