using Trainer.Core.Data;
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
    [InlineData(false)]
    [InlineData(true)]
    public void BuildingTheGradientIntoTheCallersBuffer_AllocatesNoModelSizedArray(bool bias)
    {
        // Two workers: the second block's factor product is added onto the first's (the tree's Add step).
        var spec = new TrainingSpec { Workers = 2, Model = new ModelSpec([1000, 100, 10], Activation.Sigmoid, LossKind.Sse, bias) };
        var (plan, data, _, update) = AStepsUpdate(spec);
        var gradient = new double[plan.Layout.Count];
        new ReplicaUpdate<double>(spec, plan).Gradient(update, data.X, gradient);  // warm-up: JIT, pooled GEMM buffers

        long before = GC.GetAllocatedBytesForCurrentThread();
        var replica = new ReplicaUpdate<double>(spec, plan);
        replica.Gradient(update, data.X, gradient);
        replica.Gradient(update, data.X, gradient);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        long model = plan.Layout.Count * sizeof(double);
        Assert.True(allocated < model / 4, $"a replica that built the gradient twice into the caller's buffer allocated {allocated} bytes; the model is {model}");
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
