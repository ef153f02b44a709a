using System.Numerics;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// The sufficient-factor exchange: <see cref="ExchangePlan"/> factors a layer exactly when its
/// factors are smaller than its weight matrix (and the engine can hand them out), a dense-only plan's
/// pack is the model's flat gradient, and whichever layers travel as factors the replica forms the
/// same full-batch gradient and SGD step (to rounding: 1e-12 in float64, 1e-5 in float32) as the
/// dense exchange. The seed's update is 7,400 values instead of 101,000, and building and applying
/// an update is bit-deterministic, which keeps replicas identical.
/// </summary>
public class ExchangePlanTests
{
    // 7 samples over 3 workers: shards of 3, 2 and 2.
    private const int Batch = 7, Workers = 3;

    [Fact]
    public void SeedModel_FactorsW1AndKeepsW2Dense()
    {
        var plan = ExchangePlan.For(new TrainingSpec());
        Assert.Equal(ModelSpec.Seed, plan.Model);
        Assert.Equal(64, plan.Batch);
        // w1: 64 x 100 δ values (x is the batch input every replica holds) < 100 x 1000 weights;
        // w2: 64 x (10 + 100) factor values > 10 x 100 weights.
        Assert.Equal([true, false], plan.Factored);
        Assert.True(plan.AnyFactored);
        Assert.True(plan.NeedsBatchInputs);
        Assert.Equal("w1 factors, w2 dense", plan.Describe());
    }

    [Fact]
    public void WideLayersWithABigBatch_AreDenseThroughout()
    {
        var plan = ExchangePlan.For(new TrainingSpec { Model = new ModelSpec([784, 1024, 1024, 10]), Batch = 8192 });
        Assert.Equal([false, false, false], plan.Factored);
        Assert.False(plan.AnyFactored);
        Assert.False(plan.NeedsBatchInputs);
        Assert.Equal(plan.Layout.Count, plan.Update.Length);
    }

    [Fact]
    public void AutogradEngine_IsDenseThroughout()
    {
        var plan = ExchangePlan.For(new TrainingSpec { Engine = Engine.Autograd });
        Assert.Equal([false, false], plan.Factored);
        Assert.Equal(101_000, plan.Update.Length);
    }

    [Theory]
    [InlineData(3, true)]   // 3 x 2 δ values < 2 x 4 weights
    [InlineData(4, false)]  // 4 x 2 = 8: a tie is not smaller, so the layer stays dense
    public void For_FactorsALayerOnlyWhenItsFactorsAreStrictlySmaller(int batch, bool factored)
        => Assert.Equal([factored], ExchangePlan.For(new ModelSpec([4, 2]), batch, factorsAvailable: true).Factored);

    [Fact]
    public void DenseOnlyPack_IsTheParameterLayout_ForAnySampleCount()
    {
        var spec = new ModelSpec([6, 5, 3], Activation.Tanh, LossKind.Mse, bias: true);
        var layout = ParameterLayout.For(spec);
        Assert.Equal(["w1", "b1", "w2", "b2"], layout.Views.Select(v => v.Name));
        foreach (var plan in new[] { ExchangePlan.For(spec, 10, factorsAvailable: false), ExchangePlan.With(spec, 10, false, false) })
            foreach (int samples in new[] { 0, 1, 3, 10, 1000 })
            {
                var pack = plan.PackLayout(samples);
                Assert.Equal(samples, pack.Samples);
                Assert.Equal(layout.Count, pack.Length);
                for (int l = 0; l < spec.LayerCount; l++)
                {
                    var w = layout.Weight(l + 1);
                    var b = layout.Bias(l + 1)!;
                    Assert.Equal(new PackLayer(false, w.Cols, w.Rows, w.Offset, b.Offset, -1, -1), pack.Layers[l]);
                }
            }
    }

    [Fact]
    public void FactoredPack_HoldsDeltaAndTheLayerInput_AndNoBiasSlot()
    {
        var spec = new ModelSpec([6, 5, 4, 3], Activation.Relu, LossKind.Sse, bias: true);
        // Every layer factored, 7 samples: δ1 (7x5); δ2 (7x4), a1 (7x5); δ3 (7x3), a2 (7x4).
        var all = ExchangePlan.With(spec, Batch, true, true, true).PackLayout(Batch);
        Assert.Equal(
            [new PackLayer(true, 6, 5, -1, -1, 0, -1), new PackLayer(true, 5, 4, -1, -1, 35, 63), new PackLayer(true, 4, 3, -1, -1, 98, 119)],
            all.Layers);
        Assert.Equal(147, all.Length);
        // Mixed: δ1 (7x5); w2 (4x5) and b2 (4) summed; δ3 (7x3), a2 (7x4).
        var mixed = ExchangePlan.With(spec, Batch, true, false, true).PackLayout(Batch);
        Assert.Equal(
            [new PackLayer(true, 6, 5, -1, -1, 0, -1), new PackLayer(false, 5, 4, 35, 55, -1, -1), new PackLayer(true, 4, 3, -1, -1, 59, 80)],
            mixed.Layers);
        Assert.Equal(108, mixed.Length);
        // 4 micro-shards of 2, 2, 2 and 1 samples over 3 workers: they own 2, 1 and 1 of them, so
        // 4, 2 and 1 samples, and each sends one block (its summed w2 once).
        var ranks = ExchangePlan.With(spec, Batch, true, false, true).RankPacks(Workers);
        Assert.Equal([4 * 5 + 20 + 4 + 4 * 7, 2 * 5 + 20 + 4 + 2 * 7, 1 * 5 + 20 + 4 + 1 * 7], ranks.Select(p => p.Length));
        Assert.All(ranks, r => Assert.Single(r.Blocks));
    }

    [Fact]
    public void With_RejectsAChoiceCountThatIsNotTheLayerCount_AndAnEmptyBatch()
    {
        var spec = new ModelSpec([6, 5, 4, 3]);
        var e = Assert.Throws<ArgumentException>(() => ExchangePlan.With(spec, Batch, true, false));
        Assert.Contains("2 choices given for 3 layers.", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ExchangePlan.With(spec, 0, true, false, true));
    }

    [Fact]
    public void SeedUpdate_Is7400Values_NotThe101000Parameters()
    {
        var job = new TrainingSpec();
        var plan = ExchangePlan.For(job);
        Assert.Equal(101_000, plan.Layout.Count);
        // δ1 for all 64 samples (64 x 100), then w2's summed gradient (10 x 100).
        Assert.Equal(64 * 100 + 10 * 100, plan.Update.Length);
        Assert.Equal(7_400, plan.Update.Length);
        Assert.Equal([new PackLayer(true, 1000, 100, -1, -1, 0, -1), new PackLayer(false, 100, 10, 6_400, -1, -1, -1)], plan.Update.Layers);
        Assert.True(plan.Layout.Count > 13 * plan.Update.Length, "about 13.6x smaller");
        // Each of the 2 workers sends δ1 for its 32 samples (2 micro-shards of 16) and its own w2 sum.
        Assert.Equal([32 * 100 + 10 * 100, 32 * 100 + 10 * 100], plan.RankPacks(2).Select(p => p.Length));
        var builder = new UpdateBuilder<double>(job, plan);
        Assert.Equal(7_400, builder.UpdateLength);
        Assert.Equal(4_200, builder.ShardLength(0));
        Assert.Equal(4_200, builder.ShardLength(1));
    }

    [Fact]
    public void FactoredFirstLayer_NeedsTheWholeBatchsInputsAtTheReplica()
    {
        var job = new TrainingSpec();
        var plan = ExchangePlan.For(job);
        var replica = new ReplicaUpdate<double>(job, plan, new ManagedBlas());
        var e = Assert.Throws<ArgumentException>(() => replica.Apply(1, new double[plan.Update.Length], new double[32 * 1000], new double[plan.Layout.Count], []));
        Assert.Contains("The batch inputs have 32000 values; 64 samples of 1000 are needed.", e.Message);
    }

    public static TheoryData<Activation, LossKind, bool> EveryActivationLossAndBias()
    {
        var data = new TheoryData<Activation, LossKind, bool>();
        foreach (var activation in Enum.GetValues<Activation>())
            foreach (var loss in Enum.GetValues<LossKind>())
                foreach (var bias in new[] { false, true })
                    data.Add(activation, loss, bias);
        return data;
    }

    /// <summary>Every layer factored, two mixes, none: each against the dense exchange.</summary>
    private static readonly bool[][] Plans = [[true, true, true], [true, false, true], [false, true, false]];

    [Theory]
    [MemberData(nameof(EveryActivationLossAndBias))]
    public void FactoredAndDenseExchange_GiveTheSameGradient_ToTheBit(Activation activation, LossKind loss, bool bias)
    {
        var (job, p, x, y) = Problem(activation, loss, bias);
        var model = new Mlp(job.Model, new ManagedBlas());
        var (denseLoss, dense) = Exchange.Gradient(job, model, ExchangePlan.With(job.Model, Batch, false, false, false), p, x, y);
        Assert.True(dense.Max(Math.Abs) > 1e-3, "the check needs a gradient that is not ~0");
        foreach (var choice in Plans)
        {
            var plan = ExchangePlan.With(job.Model, Batch, choice);
            var (l, g) = Exchange.Gradient(job, model, plan, p, x, y);
            Assert.Equal(denseLoss, l);  // the forward pass does not depend on the plan
            // Exact: a factored layer is multiplied out shard by shard in shard order, as the dense exchange sums it.
            Assert.True(dense.AsSpan().SequenceEqual(g), $"{job.Model} ({plan.Describe()}): gradient differs from the dense exchange's by {TestArrays.MaxRelativeDifference(g, dense):E2} (relative)");
        }
    }

    [Theory]
    [MemberData(nameof(EveryActivationLossAndBias))]
    public void FactoredAndDenseExchange_GiveTheSameGradient_ToTheBit_InFloat32(Activation activation, LossKind loss, bool bias)
    {
        var (job, p, x, y) = Problem(activation, loss, bias);
        var model = new Mlp<float>(job.Model, new ManagedBlas());
        float[] p32 = Precisions.Narrow(p), x32 = Precisions.Narrow(x), y32 = Precisions.Narrow(y);
        var (denseLoss, dense) = Exchange.Gradient(job, model, ExchangePlan.With(job.Model, Batch, false, false, false), p32, x32, y32);
        foreach (var choice in Plans)
        {
            var plan = ExchangePlan.With(job.Model, Batch, choice);
            var (l, g) = Exchange.Gradient(job, model, plan, p32, x32, y32);
            Assert.Equal(denseLoss, l);
            Assert.True(dense.AsSpan().SequenceEqual(g), $"{job.Model} ({plan.Describe()}): float32 gradient differs from the dense exchange's");
        }
    }

    [Theory]
    [MemberData(nameof(EveryActivationLossAndBias))]
    public void FactoredAndDenseExchange_TakeTheSameSgdStep_ToTheBit(Activation activation, LossKind loss, bool bias)
    {
        var (job, p, x, y) = Problem(activation, loss, bias);
        AssertEveryPlanTakesTheDenseStep(job, new Mlp(job.Model, new ManagedBlas()), p, x, y);
    }

    [Theory]
    [MemberData(nameof(EveryActivationLossAndBias))]
    public void FactoredAndDenseExchange_TakeTheSameSgdStep_ToTheBit_InFloat32(Activation activation, LossKind loss, bool bias)
    {
        var (job, p, x, y) = Problem(activation, loss, bias);
        AssertEveryPlanTakesTheDenseStep(job, new Mlp<float>(job.Model, new ManagedBlas()), Precisions.Narrow(p), Precisions.Narrow(x), Precisions.Narrow(y));
    }

    /// <summary>Every plan's SGD step equals the all-dense plan's, to the bit (and moves the parameters).</summary>
    private static void AssertEveryPlanTakesTheDenseStep<T>(TrainingSpec job, IGradientModel<T> model, T[] p, T[] x, T[] y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var dense = Exchange.Step(job, model, ExchangePlan.With(job.Model, Batch, false, false, false), p, x, y);
        Assert.NotEqual(p, dense);
        foreach (var choice in Plans)
        {
            var plan = ExchangePlan.With(job.Model, Batch, choice);
            Assert.Equal(dense, Exchange.Step(job, model, plan, p, x, y));
        }
    }

    [Theory]
    [InlineData("managed")]
    [InlineData("openblas")]
    public void SameShardPacks_BuildAndApplyToBitIdenticalParameters(string backend)
    {
        // The seed job on 3 workers (w1 factored, w2 dense), as two replicas would see it.
        var blas = Backends.ByName(backend);
        var job = new TrainingSpec { Workers = 3 };
        var plan = ExchangePlan.For(job);
        var data = Synthetic.Data(job.Batch, 1000, 10, seed: 0);
        var p = Initializer.Create(plan.Layout, InitKind.Normal, seed: 0);
        var (losses, packs) = Exchange.ShardPacks(job, new Mlp(job.Model, blas), plan, p, data.X, data.Y);

        var (loss1, update1) = Exchange.Update(job, plan, losses, packs);
        var (loss2, update2) = Exchange.Update(job, plan, losses, packs);
        Assert.Equal(loss1, loss2);
        Assert.Equal(update1, update2);

        double[] replica1 = (double[])p.Clone(), replica2 = (double[])p.Clone();
        new ReplicaUpdate<double>(job, plan, blas).Apply(1, update1, data.X, replica1, []);
        new ReplicaUpdate<double>(job, plan, blas).Apply(1, update2, data.X, replica2, []);
        Assert.NotEqual(p, replica1);
        Assert.Equal(replica1, replica2);  // exact: the same bits, not merely close

        // One replica applying the same update again from the same start is the same bits too.
        var again = (double[])p.Clone();
        var reused = new ReplicaUpdate<double>(job, plan, blas);
        reused.Apply(1, update1, data.X, again, []);
        Array.Copy(p, again, p.Length);
        reused.Apply(1, update1, data.X, again, []);
        Assert.Equal(replica1, again);
    }

    [Fact]
    public void SameShardPacks_BuildAndApplyToBitIdenticalParameters_InFloat32()
    {
        var (job, p, x, y) = Problem(Activation.Tanh, LossKind.Mse, bias: true);
        var plan = ExchangePlan.With(job.Model, Batch, true, false, true);
        float[] p32 = Precisions.Narrow(p), x32 = Precisions.Narrow(x), y32 = Precisions.Narrow(y);
        var (losses, packs) = Exchange.ShardPacks(job, new Mlp<float>(job.Model, new ManagedBlas()), plan, p32, x32, y32);

        var (_, update1) = Exchange.Update(job, plan, losses, packs);
        var (_, update2) = Exchange.Update(job, plan, losses, packs);
        Assert.Equal(update1, update2);
        float[] replica1 = (float[])p32.Clone(), replica2 = (float[])p32.Clone();
        new ReplicaUpdate<float>(job, plan, new ManagedBlas()).Apply(1, update1, x32, replica1, []);
        new ReplicaUpdate<float>(job, plan, new ManagedBlas()).Apply(1, update2, x32, replica2, []);
        Assert.NotEqual(p32, replica1);
        Assert.Equal(replica1, replica2);
    }

    /// <summary>A 6-5-4-3 job of 7 samples on 3 workers; weights small enough that the loss is O(1).</summary>
    private static (TrainingSpec Job, double[] P, double[] X, double[] Y) Problem(Activation activation, LossKind loss, bool bias, int seed = 7)
    {
        var job = Exchange.Job(new ModelSpec([6, 5, 4, 3], activation, loss, bias), Batch, Workers, learningRate: 0.05);
        var layout = ParameterLayout.For(job.Model);
        return (job, TestArrays.Normal(layout.Count, seed, 0.5), TestArrays.Normal(Batch * 6, seed + 100), TestArrays.Normal(Batch * 3, seed + 200));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void AReplicaThatPrecomputedItsOwnShard_TakesTheSameStep_ToTheBit(int rank)
    {
        // A worker multiplies out its own shard's factors before the update arrives; the step must not change.
        var job = new TrainingSpec { Workers = 3, Model = new ModelSpec([1000, 100, 10], Activation.Sigmoid, LossKind.Mse, bias: true) };
        var plan = ExchangePlan.For(job);
        Assert.True(plan.Factored[0]);
        var data = Synthetic.Data(job.Batch, 1000, 10, seed: 1);
        var p = Initializer.Create(plan.Layout, InitKind.Xavier, seed: 1);
        var (losses, packs) = Exchange.ShardPacks(job, new Mlp(job.Model, new ManagedBlas()), plan, p, data.X, data.Y);
        var (_, update) = Exchange.Update(job, plan, losses, packs);

        var plain = (double[])p.Clone();
        new ReplicaUpdate<double>(job, plan, new ManagedBlas()).Apply(1, update, data.X, plain, []);

        var ahead = (double[])p.Clone();
        var replica = new ReplicaUpdate<double>(job, plan, new ManagedBlas());
        var shard = plan.Micro.RowsOf(rank, job.Workers);
        replica.Precompute(rank, packs[rank], data.X.AsSpan(shard.Start * 1000, shard.Count * 1000));
        replica.Apply(1, update, data.X, ahead, []);
        Assert.NotEqual(p, ahead);
        Assert.Equal(plain, ahead);

        // Discarded (the replica was replaced), the precomputed share is not used: a corrupted one would show.
        var discarded = (double[])p.Clone();
        replica.Precompute(rank, new double[packs[rank].Length], data.X.AsSpan(shard.Start * 1000, shard.Count * 1000));
        replica.DiscardPrecomputed();
        replica.Apply(1, update, data.X, discarded, []);
        Assert.Equal(plain, discarded);
    }

    [Theory]
    [InlineData(2, 4)]
    [InlineData(3, 4)]
    [InlineData(3, 7)]
    public void AServerThatPrecomputedEveryWorkersBlocks_BuildsTheSameGradient_ToTheBit(int workers, int microShards)
    {
        // A parameter server multiplies out each worker's factors as its pack comes in (blocks of one and of
        // several micro-shards, uneven counts); the full-batch gradient must be the one built from the update alone.
        var job = new TrainingSpec { Workers = workers, Batch = 56, Samples = 56, MicroShards = microShards, Model = new ModelSpec([300, 40, 10], Activation.Relu, LossKind.Mse, bias: true) };
        var plan = ExchangePlan.For(job);
        Assert.True(plan.Factored[0]);
        var data = Synthetic.Data(job.Batch, 300, 10, seed: 3);
        var p = Initializer.Create(plan.Layout, InitKind.Xavier, seed: 3);
        var (losses, packs) = Exchange.ShardPacks(job, new Mlp(job.Model, new ManagedBlas()), plan, p, data.X, data.Y);
        var (_, update) = Exchange.Update(job, plan, losses, packs);

        var plain = new double[plan.Layout.Count];
        new ReplicaUpdate<double>(job, plan, new ManagedBlas()).Gradient(update, data.X, plain);
        Assert.Contains(plain, g => g != 0);

        var replica = new ReplicaUpdate<double>(job, plan, new ManagedBlas());
        Assert.True(replica.PrecomputedBytes > 0);
        var precomputed = new double[plan.Layout.Count];
        for (int rank = 0; rank < workers; rank++) replica.PrecomputeFromBatch(rank, packs[rank], data.X);
        replica.Gradient(update, data.X, precomputed);
        Assert.Equal(plain, precomputed);

        // Some ranks only (a step begun again keeps none; a server may precompute some and not others).
        var partly = new double[plan.Layout.Count];
        replica.PrecomputeFromBatch(workers - 1, packs[workers - 1], data.X);
        replica.Gradient(update, data.X, partly);
        Assert.Equal(plain, partly);

        // The products are used (a zero pack's shows), once: the next gradient builds from the update again.
        var zeroPack = new double[packs[0].Length];
        var fromZeros = new double[plan.Layout.Count];
        replica.PrecomputeFromBatch(0, zeroPack, data.X);
        replica.Gradient(update, data.X, fromZeros);
        Assert.NotEqual(plain, fromZeros);
        var next = new double[plan.Layout.Count];
        replica.Gradient(update, data.X, next);
        Assert.Equal(plain, next);

        // Discarded (the step was begun again), they are not used.
        replica.PrecomputeFromBatch(0, zeroPack, data.X);
        replica.DiscardPrecomputed();
        var discarded = new double[plan.Layout.Count];
        replica.Gradient(update, data.X, discarded);
        Assert.Equal(plain, discarded);
    }
}
