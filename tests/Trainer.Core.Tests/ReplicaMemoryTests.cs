using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// What a replica of the update holds beside the model. A factored first layer's weight gradient is
/// nearly the whole model (50M of a 50M-parameter model's values), so every buffer of that size is a
/// second model in memory: a parameter server or worker that only builds the gradient into a buffer of
/// its own (any optimizer with state, a sharded server) must not hold one, and a bias needs no more
/// than its own length of scratch.
/// </summary>
[Collection(SteadyStateAllocationTests.Name)]
public class ReplicaMemoryTests
{
    [Theory]
    [InlineData("managed", 64, false)]   // micro-shards of 32 samples: the second's product is added in place
    [InlineData("managed", 64, true)]
    [InlineData("managed", 600, true)]   // micro-shards of 300, past one pass of the GEMM: added a block of rows at a time
    [InlineData("openblas", 64, true)]   // OpenBLAS, within one pass (tried): added in place
    public void BuildingTheGradientIntoTheCallersBuffer_AllocatesNoModelSizedArray(string backend, int batch, bool bias)
    {
        long allocated = TwoGradientsAllocate(Backends.ByName(backend), batch, bias, out long model, out _);

        Assert.True(allocated < model / 4, $"a replica that built the gradient twice into the caller's buffer allocated {allocated} bytes; the model is {model}");
    }

    [Fact]
    public void OnAGemmThatPromisesNeither_AnAddedProductIsFormedWhole_InOneScratchOfTheLayer()
    {
        // OpenBLAS past one pass over k (1024 samples a micro-shard): it makes no promise for the product added, nor
        // about rows, so the product is formed as the workers form a dense layer's, whole.
        var blas = Backends.RequireOpenBlas();
        Assert.False(blas.AddsInOnePass<double>(Transpose.Yes, Transpose.No, 100, 4000, 1024));
        long allocated = TwoGradientsAllocate(blas, 2048, bias: true, out long model, out long layer, inputs: 4000);

        Assert.InRange(allocated, layer, layer + model / 4);
    }

    /// <summary>
    /// What a new replica allocates building the gradient of the seed model (1000-100-10, or as many
    /// <paramref name="inputs"/>; factored first layer) on two workers twice into the caller's buffer: the second
    /// block's product is added onto the first's (the tree's Add step).
    /// </summary>
    private static long TwoGradientsAllocate(IBlas blas, int batch, bool bias, out long model, out long layer, int inputs = 1000)
    {
        var spec = new TrainingSpec { Workers = 2, Batch = batch, MicroShards = 2, Model = new ModelSpec([inputs, 100, 10], Activation.Sigmoid, LossKind.Sse, bias) };
        var (plan, data, _, update) = AStepsUpdate(spec);
        var gradient = new double[plan.Layout.Count];
        new ReplicaUpdate<double>(spec, plan, blas).Gradient(update, data.X, gradient);  // warm-up: JIT, pooled GEMM buffers

        long before = GC.GetAllocatedBytesForCurrentThread();
        var replica = new ReplicaUpdate<double>(spec, plan, blas);
        replica.Gradient(update, data.X, gradient);
        replica.Gradient(update, data.X, gradient);
        model = plan.Layout.Count * sizeof(double);
        layer = inputs * 100 * sizeof(double);
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void AReleasedReplica_LetsGoOfItsGradient_AndItsNextApplyMakesOneAgain_WithTheSameBits()
    {
        // SGD on a factored first layer: Apply multiplies the factors out into a gradient of the model's size.
        var spec = new TrainingSpec { Workers = 2 };
        var (plan, data, p, update) = AStepsUpdate(spec);
        var replica = new ReplicaUpdate<double>(spec, plan);
        double[] Applied()
        {
            var parameters = (double[])p.Clone();
            replica.Apply(1, update, data.X, parameters, []);
            return parameters;
        }
        var first = Applied();

        long before = GC.GetAllocatedBytesForCurrentThread();
        var kept = Applied();
        long again = GC.GetAllocatedBytesForCurrentThread() - before;
        replica.Release();
        before = GC.GetAllocatedBytesForCurrentThread();
        var released = Applied();
        long afterRelease = GC.GetAllocatedBytesForCurrentThread() - before;

        long model = plan.Layout.Count * sizeof(double);
        Assert.True(again - model < model / 4, $"an Apply that kept its gradient allocated {again} bytes (with its copy of the {model}-byte parameters)");
        Assert.True(afterRelease - model >= model, $"the Apply after Release allocated {afterRelease} bytes: it should make a new {model}-byte gradient");
        Assert.Equal(first, kept);
        Assert.Equal(first, released);
    }

    /// <summary>The plan, data, initial parameters and first step's update of <paramref name="spec"/>, whose first layer must be factored.</summary>
    private static (ExchangePlan Plan, Dataset Data, double[] Parameters, double[] Update) AStepsUpdate(TrainingSpec spec)
    {
        var plan = ExchangePlan.For(spec);
        Assert.True(plan.Factored[0], "the check needs a factored first layer");
        var data = Synthetic.Data(spec.Batch, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed);
        var p = Initializer.Create(plan.Layout, InitKind.Normal, spec.Seed);
        var (losses, packs) = Exchange.ShardPacks(spec, new Mlp(spec.Model), plan, p, data.X, data.Y);
        var (_, update) = Exchange.Update(spec, plan, losses, packs);
        return (plan, data, p, update);
    }
}
