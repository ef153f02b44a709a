using System.Numerics;
using System.Runtime.InteropServices;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// A worker whose GEMM keeps rows apart (<see cref="IBlas.RowsAlike"/>: the managed one) runs forward and
/// backward once over all its micro-shards (<see cref="ILeafGradientModel{T}"/>) and forms each one's products
/// after; that must give every pack and loss the bytes of computing each micro-shard alone, the way it does on
/// OpenBLAS, for every shape the exchange meets: narrow products (rows, outputs or units up to 16 take another
/// path in the managed GEMM), spans shorter than a vector (TensorPrimitives' scalar path), uneven micro-shards,
/// factored and dense layers, both precisions.
/// </summary>
public sealed class LeavesTogetherTests
{
    public static TheoryData<string, string, string, bool, int, int, int, string> Cases => new()
    {
        // model, activation, loss, bias, batch, micro-shards, workers, factored layers ("auto": the plan's own choice)
        { "1000-100-10", "sigmoid", "sse", false, 64, 2, 1, "auto" },
        { "784-256-128-10", "relu", "ce", true, 128, 4, 1, "auto" },
        { "784-256-128-10", "relu", "ce", true, 128, 4, 2, "auto" },
        { "784-256-128-10", "relu", "ce", true, 128, 4, 3, "none" },
        { "3-4-2", "sigmoid", "mse", false, 5, 5, 1, "none" },
        { "3-4-2", "tanh", "ce", true, 5, 5, 2, "all" },
        { "20-17-3", "tanh", "sse", true, 37, 7, 3, "all" },
        { "20-17-9-3", "relu", "mse", false, 37, 7, 2, "none" },
        { "50-33-10", "sigmoid", "ce", true, 100, 6, 1, "auto" },
        // More rows than RankStep computes together: groups of micro-shards, uneven ones too.
        { "50-33-10", "relu", "ce", true, 300, 10, 1, "auto" },
        { "100-40-10", "tanh", "mse", true, 512, 16, 2, "none" },
        { "100-40-10", "sigmoid", "sse", false, 1000, 4, 1, "none" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void AWorkersMicroShardsComputedTogether_GiveThePacksAndLossesOfEachComputedAlone_Float64(
        string model, string activation, string loss, bool bias, int batch, int microShards, int workers, string factored) =>
        Compare<double>(model, activation, loss, bias, batch, microShards, workers, factored);

    [Theory]
    [MemberData(nameof(Cases))]
    public void AWorkersMicroShardsComputedTogether_GiveThePacksAndLossesOfEachComputedAlone_Float32(
        string model, string activation, string loss, bool bias, int batch, int microShards, int workers, string factored) =>
        Compare<float>(model, activation, loss, bias, batch, microShards, workers, factored);

    [Fact]
    public void OnlyAGemmThatKeepsRowsApart_LetsTheMicroShardsBeComputedTogether()
    {
        Assert.True(new Mlp(ModelSpec.Seed, new ManagedBlas()).LeavesTogether);
        Assert.False(new Mlp(ModelSpec.Seed, new SizeBlind(new ManagedBlas())).LeavesTogether);
        var model = new Mlp(ModelSpec.Seed, new SizeBlind(new ManagedBlas()));
        var error = Assert.Throws<InvalidOperationException>(() => model.LeafLosses(
            new double[model.Layout.Count], new double[2000], new double[20], [new Shard(0, 0, 1), new Shard(1, 1, 1)], new double[2]));
        Assert.Contains("compute each micro-shard alone", error.Message);
    }

    [Theory]
    [InlineData(300, 10, 1, new[] { 4, 4, 2 })]     // 30 rows each: 120 + 120 + 60
    [InlineData(128, 4, 2, new[] { 2 })]             // worker 0 of 2: 64 rows
    [InlineData(64, 2, 1, new[] { 2 })]              // the seed's batch
    [InlineData(1000, 4, 1, new int[0])]             // 250 rows each: every one alone
    [InlineData(192, 3, 1, new[] { 2 })]             // 64 + 64 together; the third, past 128 rows, alone
    public void AWorker_ComputesUpTo128RowsOfConsecutiveMicroShardsTogether(int batch, int microShards, int workers, int[] groups)
    {
        var spec = ModelSpec.Parse("20-8-3", "relu", "ce", true);
        var plan = ExchangePlan.For(spec, batch, factorsAvailable: true, microShards);
        var worker = new RankStep<double>(plan, 0, workers);
        var model = new Counting(new Mlp(spec, new ManagedBlas()));
        int rows = worker.Layout.Rows.Count;
        worker.Compute(model, new double[model.Layout.Count], new double[rows * 20], new double[rows * 3], new double[worker.Layout.Length], new double[worker.Layout.Blocks.Count]);
        Assert.Equal(groups, model.Groups);
    }

    [Fact]
    public void MicroShardsThatDoNotFollowEachOther_AreRefused()
    {
        var model = new Mlp(ModelSpec.Seed, new ManagedBlas());
        var error = Assert.Throws<ArgumentException>(() => model.LeafLosses(
            new double[model.Layout.Count], new double[3000], new double[30], [new Shard(0, 0, 1), new Shard(1, 2, 1)], new double[2]));
        Assert.Contains("starts at row 2", error.Message);
    }

    private static void Compare<T>(string architecture, string activation, string loss, bool bias, int batch, int microShards, int workers, string factored)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var spec = ModelSpec.Parse(architecture, activation, loss, bias);
        var job = Exchange.Job(spec, batch, workers) with { MicroShards = microShards };
        var plan = factored == "auto"
            ? ExchangePlan.For(spec, batch, factorsAvailable: true, microShards)
            : ExchangePlan.With(spec, batch, [.. Enumerable.Repeat(factored == "all", spec.LayerCount)]).WithMicroShards(microShards);
        var random = new Random(7);
        var p = Values<T>(random, ParameterLayout.For(spec).Count, 0.3);
        var x = Values<T>(random, batch * spec.InputSize, 1.0);
        var y = new T[batch * spec.OutputSize];
        for (int r = 0; r < batch; r++)
        {
            if (spec.Loss == LossKind.CrossEntropy) y[r * spec.OutputSize + random.Next(spec.OutputSize)] = T.One;
            else for (int k = 0; k < spec.OutputSize; k++) y[r * spec.OutputSize + k] = T.CreateTruncating(random.NextDouble());
        }

        var together = new Mlp<T>(spec, new ManagedBlas());
        Assert.True(together.LeavesTogether);
        var (losses, packs) = Exchange.ShardPacks(job, together, plan, p, x, y);
        // The same GEMM without its promise: the worker computes each micro-shard alone.
        var alone = new Mlp<T>(spec, new SizeBlind(new ManagedBlas()));
        Assert.False(alone.LeavesTogether);
        var (aloneLosses, alonePacks) = Exchange.ShardPacks(job, alone, plan, p, x, y);

        for (int rank = 0; rank < workers; rank++)
        {
            Assert.Equal(aloneLosses[rank], losses[rank]);
            Assert.True(MemoryMarshal.AsBytes(alonePacks[rank].AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(packs[rank].AsSpan())),
                $"worker {rank} of {workers}: its pack computed together differs from the micro-shards computed alone");
        }
    }

    private static T[] Values<T>(Random random, int count, double scale) where T : unmanaged, IFloatingPointIeee754<T> =>
        [.. Enumerable.Range(0, count).Select(_ => T.CreateTruncating((random.NextDouble() * 2 - 1) * scale))];

    /// <summary>The model, counting the micro-shards of each <see cref="ILeafGradientModel{T}.LeafLosses"/>.</summary>
    private sealed class Counting(Mlp model) : ILeafGradientModel<double>
    {
        public List<int> Groups { get; } = [];
        public ModelSpec Spec => model.Spec;
        public ParameterLayout Layout => model.Layout;
        public bool LeavesTogether => model.LeavesTogether;
        public double LossAndGradient(ReadOnlySpan<double> parameters, ReadOnlySpan<double> x, ReadOnlySpan<double> y, int samples, Span<double> gradient) =>
            model.LossAndGradient(parameters, x, y, samples, gradient);
        public double Loss(ReadOnlySpan<double> parameters, ReadOnlySpan<double> x, ReadOnlySpan<double> y, int samples) => model.Loss(parameters, x, y, samples);
        public double LossAndPack(ReadOnlySpan<double> parameters, ReadOnlySpan<double> x, ReadOnlySpan<double> y, int samples, Pack pack, Span<double> destination) =>
            model.LossAndPack(parameters, x, y, samples, pack, destination);
        public void LeafLosses(ReadOnlySpan<double> parameters, ReadOnlySpan<double> x, ReadOnlySpan<double> y, ReadOnlySpan<Shard> leaves, Span<double> losses)
        {
            Groups.Add(leaves.Length);
            model.LeafLosses(parameters, x, y, leaves, losses);
        }
        public void LeafPack(ReadOnlySpan<double> x, Shard leaf, Pack pack, Span<double> destination) => model.LeafPack(x, leaf, pack, destination);
        public bool AddsInPlace(Pack pack) => model.AddsInPlace(pack);
        public double LossAndPack(ReadOnlySpan<double> parameters, ReadOnlySpan<double> x, ReadOnlySpan<double> y, int samples, Pack pack, Span<double> destination, bool add) =>
            model.LossAndPack(parameters, x, y, samples, pack, destination, add);
        public void LeafPack(ReadOnlySpan<double> x, Shard leaf, Pack pack, Span<double> destination, bool add) => model.LeafPack(x, leaf, pack, destination, add);
    }
}
