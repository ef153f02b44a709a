using System.Runtime.InteropServices;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// A factored layer's gradient is summed on the replica from its micro-shards' products δᵀ·a, up the tree.
/// Which products start a sum and which are added to one depends on the worker count. An added product (in
/// place, or a block of rows at a time, where the GEMM promises those bits; else formed whole) must have the
/// bits it has when it starts a sum, on either GEMM, or the weights would follow the worker count; and the
/// sum must be the dense exchange's, whose products the workers form whole.
/// </summary>
public sealed class FactoredGradientBitsTests
{
    [Theory]
    [InlineData("managed", 64)]    // micro-shards of 16 samples: added in place
    [InlineData("openblas", 64)]   // within one pass of every OpenBLAS kernel: tried, then added in place
    [InlineData("managed", 1200)]  // micro-shards of 300 samples, past one pass of the managed GEMM: added by blocks of rows
    [InlineData("openblas", 1200)] // past one pass of some kernels: formed whole there, then added
    public void AFactoredLayersGradient_HasTheDenseExchangesBits_ForEveryWorkerCount_OnEitherGemm(string backend, int batch)
    {
        var blas = Backends.ByName(backend);
        var model = new ModelSpec([200, 36, 10], Activation.Sigmoid, LossKind.Sse, bias: true);
        var factored = ExchangePlan.With(model, batch, true, false).WithMicroShards(4);
        var dense = ExchangePlan.With(model, batch, false, false).WithMicroShards(4);
        var data = Synthetic.Data(batch, model.InputSize, model.OutputSize, seed: 2);
        var p = Initializer.Create(factored.Layout, InitKind.Normal, seed: 2);
        double[] Gradient(int workers, ExchangePlan plan)
        {
            var job = Exchange.Job(model, batch, workers) with { MicroShards = 4 };
            var (losses, packs) = Exchange.ShardPacks(job, new Mlp(model, blas), plan, p, data.X, data.Y);
            var (_, update) = Exchange.Update(job, plan, losses, packs);
            var gradient = new double[plan.Layout.Count];
            new ReplicaUpdate<double>(job, plan, blas).Gradient(update, data.X, gradient);
            return gradient;
        }

        var one = Gradient(1, dense);
        Assert.True(one.Count(v => v != 0) > one.Length / 2, "the check needs a gradient");
        for (int workers = 1; workers <= 4; workers++)
            Assert.True(MemoryMarshal.AsBytes(one.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(Gradient(workers, factored).AsSpan())),
                $"{workers} workers' gradient through the factored exchange differs from the dense exchange's on {backend}, batch {batch}");
    }
}
