using System.Numerics;
using System.Runtime.InteropServices;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// A worker sums its micro-shards' packs up the tree. Where the pack is dense and the GEMM promises that
/// adding a product in place rounds as adding it once formed (<see cref="IBlas.AddsInOnePass{T}"/>), a
/// micro-shard's pack is written into its slot or added to it in place: no scratch pack, no pass to copy or
/// add it. That must give the bytes of forming each pack alone and summing it, on either GEMM, in either
/// precision; and OpenBLAS, whose promise is tried per shape, must keep it on values it was not tried on.
/// </summary>
public sealed class InPlacePackSumsTests
{
    public static TheoryData<string, string, string, bool, int, int, int> Cases => new()
    {
        // backend, model, activation, bias, batch, micro-shards, workers
        { "managed", "784-256-128-10", "relu", true, 128, 4, 1 },
        { "managed", "784-256-128-10", "relu", true, 128, 4, 2 },
        { "managed", "1000-100-10", "sigmoid", false, 64, 2, 1 },
        { "managed", "20-17-3", "tanh", true, 37, 7, 3 },
        { "managed", "100-40-10", "relu", true, 1200, 4, 1 },   // 300 samples a micro-shard: past one pass, formed alone
        { "openblas", "784-256-128-10", "relu", true, 128, 4, 1 },
        { "openblas", "784-256-128-10", "relu", true, 128, 4, 2 },
        { "openblas", "1000-100-10", "sigmoid", false, 64, 2, 1 },
        { "openblas", "20-17-3", "tanh", true, 37, 7, 3 },
        { "openblas", "100-40-10", "relu", true, 1200, 4, 1 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void AWorkersMicroShardsAddedInPlace_GiveThePacksOfEachFormedAloneAndSummed_Float64(
        string backend, string model, string activation, bool bias, int batch, int microShards, int workers) =>
        Compare<double>(backend, model, activation, bias, batch, microShards, workers);

    [Theory]
    [MemberData(nameof(Cases))]
    public void AWorkersMicroShardsAddedInPlace_GiveThePacksOfEachFormedAloneAndSummed_Float32(
        string backend, string model, string activation, bool bias, int batch, int microShards, int workers) =>
        Compare<float>(backend, model, activation, bias, batch, microShards, workers);

    [Theory]
    [InlineData(Transpose.Yes, Transpose.No, 256, 784, 32)]   // workload F's products, 32 samples a micro-shard
    [InlineData(Transpose.Yes, Transpose.No, 128, 256, 32)]
    [InlineData(Transpose.Yes, Transpose.No, 10, 128, 16)]
    [InlineData(Transpose.Yes, Transpose.No, 100, 1000, 64)]
    [InlineData(Transpose.No, Transpose.No, 37, 53, 61)]
    [InlineData(Transpose.No, Transpose.Yes, 64, 40, 1)]
    public void OpenBlasPromisesAnInPlaceAddWithinOnePass_AndKeepsItOnOtherValues(Transpose ta, Transpose tb, int m, int n, int k)
    {
        var blas = Backends.RequireOpenBlas();
        // Every x86-64 kernel of OpenBLAS takes at least 64 of k in one pass.
        Assert.True(blas.AddsInOnePass<double>(ta, tb, m, n, k), $"OpenBLAS ({blas.CoreName}) does not promise an in-place add of {m}x{n}, k = {k}");
        Assert.True(blas.AddsInOnePass<float>(ta, tb, m, n, k), $"OpenBLAS ({blas.CoreName}) does not promise an in-place float32 add of {m}x{n}, k = {k}");
        var (alone, inPlace) = AddedBothWays(blas, ta, tb, m, n, k, seed: 11);
        Assert.True(MemoryMarshal.AsBytes(alone.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(inPlace.AsSpan())),
            $"OpenBLAS ({blas.CoreName}) added {m}x{n}, k = {k} in place with other bits than adding the product formed alone");
    }

    [Fact]
    public void OpenBlasPromisesNoInPlaceAdd_OverMoreThanOnePass_WhereTheBitsDiffer()
    {
        var blas = Backends.RequireOpenBlas();
        // No kernel takes 4096 of k in one pass: the additions are grouped otherwise, and the bits show it.
        var (alone, inPlace) = AddedBothWays(blas, Transpose.Yes, Transpose.No, 64, 96, 4096, seed: 12);
        Assert.False(MemoryMarshal.AsBytes(alone.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(inPlace.AsSpan())),
            "an in-place add over k = 4096 had the bits of adding the product formed alone: the check needs a shape where they differ");
        Assert.False(blas.AddsInOnePass<double>(Transpose.Yes, Transpose.No, 64, 96, 4096));
    }

    [Fact]
    public void OpenBlasPromisesNoInPlaceAdd_ForAProductTooLargeToTry()
    {
        var blas = Backends.RequireOpenBlas();
        Assert.False(blas.AddsInOnePass<double>(Transpose.Yes, Transpose.No, 10000, OpenBlas.ProbeElements / 10000 + 1, 8));
    }

    [Theory]
    [InlineData("managed")]
    [InlineData("openblas")]
    public void AWorkerOfADensePlan_WhoseGemmAddsInPlace_HoldsNoScratchPack(string backend)
    {
        var spec = ModelSpec.Parse("784-256-128-10", "relu", "ce", true);
        var plan = ExchangePlan.With(spec, 128, false, false, false).WithMicroShards(4);
        var model = new Mlp(spec, Backends.ByName(backend));
        Assert.True(model.AddsInPlace(plan.PackLayout(32)));
        var p = new double[model.Layout.Count];
        var x = TestArrays.Normal(128 * 784, 3);
        var y = TestArrays.OneHot(128, 10, 4);
        var pack = new double[plan.RankPack(0, 2).Length];
        var losses = new double[1];
        Compute(new RankStep<double>(plan, 0, 2));   // warm-up: the model's buffers, the GEMM's pools and tries

        long before = GC.GetAllocatedBytesForCurrentThread();
        Compute(new RankStep<double>(plan, 0, 2));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        long bytes = pack.Length * sizeof(double);
        Assert.True(allocated < bytes / 4, $"a worker that added its second micro-shard in place allocated {allocated} bytes; its pack is {bytes}");

        void Compute(RankStep<double> step)
        {
            var rows = step.Layout.Rows;
            step.Compute(model, p, x.AsSpan(rows.Start * 784, rows.Count * 784), y.AsSpan(rows.Start * 10, rows.Count * 10), pack, losses);
        }
    }

    private static void Compare<T>(string backend, string architecture, string activation, bool bias, int batch, int microShards, int workers)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var blas = Backends.ByName(backend);
        var spec = ModelSpec.Parse(architecture, activation, "ce", bias);
        var job = Exchange.Job(spec, batch, workers) with { MicroShards = microShards };
        var plan = ExchangePlan.With(spec, batch, [.. Enumerable.Repeat(false, spec.LayerCount)]).WithMicroShards(microShards);
        var random = new Random(5);
        var p = Values<T>(random, ParameterLayout.For(spec).Count, 0.3);
        var x = Values<T>(random, batch * spec.InputSize, 1.0);
        var y = new T[batch * spec.OutputSize];
        for (int r = 0; r < batch; r++) y[r * spec.OutputSize + random.Next(spec.OutputSize)] = T.One;

        var model = new Mlp<T>(spec, blas);
        // The in-place path must be the one checked where it is promised: on the managed GEMM up to one pass over
        // k, on OpenBLAS at least up to 64 samples (past that, on some kernels).
        int leaf = plan.Micro.Leaves[0].Count;
        bool inPlace = model.AddsInPlace(plan.PackLayout(leaf));
        if (backend == "managed") Assert.Equal(leaf <= new ManagedBlas().SinglePassDepth, inPlace);
        else if (leaf <= 64) Assert.True(inPlace, $"OpenBLAS does not add micro-shards of {leaf} samples in place");
        var (losses, packs) = Exchange.ShardPacks(job, model, plan, p, x, y);
        // The same GEMM without its promises: every micro-shard's pack formed alone in scratch and summed after.
        var alone = new Mlp<T>(spec, new SizeBlind(blas));
        Assert.False(alone.AddsInPlace(plan.PackLayout(leaf)));
        var (aloneLosses, alonePacks) = Exchange.ShardPacks(job, alone, plan, p, x, y);

        for (int rank = 0; rank < workers; rank++)
        {
            Assert.Equal(aloneLosses[rank], losses[rank]);
            Assert.True(MemoryMarshal.AsBytes(alonePacks[rank].AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(packs[rank].AsSpan())),
                $"worker {rank} of {workers} on {backend}: its pack summed in place differs from its micro-shards' packs formed alone and summed");
        }
    }

    /// <summary>C + op(A)·op(B) formed alone and added, and the same added in place (GemmAdd), on normal values (C ten times larger).</summary>
    private static (double[] Alone, double[] InPlace) AddedBothWays(IBlas blas, Transpose ta, Transpose tb, int m, int n, int k, int seed)
    {
        var a = TestArrays.Normal(m * k, seed);
        var b = TestArrays.Normal(k * n, seed + 1);
        var c = TestArrays.Normal(m * n, seed + 2, std: 10);
        int lda = ta == Transpose.No ? k : m, ldb = tb == Transpose.No ? n : k;
        var product = new double[m * n];
        blas.Gemm(ta, tb, m, n, k, a, lda, b, ldb, product, n);
        var alone = c.Zip(product, (u, v) => u + v).ToArray();
        blas.GemmAdd(ta, tb, m, n, k, a, lda, b, ldb, c, n);
        return (alone, c);
    }

    private static T[] Values<T>(Random random, int count, double scale) where T : unmanaged, IFloatingPointIeee754<T> =>
        [.. Enumerable.Range(0, count).Select(_ => T.CreateTruncating((random.NextDouble() * 2 - 1) * scale))];
}
