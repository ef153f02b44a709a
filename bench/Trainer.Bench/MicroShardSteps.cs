using System.Numerics;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Bench;

/// <summary>
/// A worker's half of a step (<see cref="RankStep{T}"/>: forward, backward and its micro-shards' packs up the
/// tree) with its micro-shards computed together (<see cref="ILeafGradientModel{T}"/>: one forward and backward
/// over all its rows, then each micro-shard's products) against each computed alone (the path of a GEMM that
/// does not keep rows apart, as OpenBLAS), on the trainer's shapes, at the same parameters and data. Rows
/// interleaved per repetition; medians of milliseconds per step and the ratio alone / together. Both give the
/// same bytes (LeavesTogetherTests); this run checks it again before timing.
/// </summary>
/// <remarks>
/// Run as the trainer's steps run: DOTNET_TieredCompilation=0 (and DOTNET_EnableAVX512=0 for an AVX2 CPU).
/// Arguments: repetitions, steps per repetition. The GEMM is the managed one: only it keeps rows apart.
/// </remarks>
public static class MicroShardSteps
{
    private sealed record Shape(string Name, string Model, string Activation, string Loss, bool Bias, int Batch, int Workers, int MicroShards = 0);

    private static readonly Shape[] Shapes =
    [
        new("workload F, batch 128 (4 micro-shards of 32), W=1", "784-256-128-10", "relu", "ce", true, 128, 1),
        new("workload F, batch 128, a worker of W=2 (2 micro-shards)", "784-256-128-10", "relu", "ce", true, 128, 2),
        new("workload F, batch 1024 (4 micro-shards of 256), W=1", "784-256-128-10", "relu", "ce", true, 1024, 1),
        new("workload F, batch 1024, --micro-shards 32 (of 32), W=1", "784-256-128-10", "relu", "ce", true, 1024, 1, 32),
        new("seed job, batch 64 (2 micro-shards of 32), W=1", "1000-100-10", "sigmoid", "sse", false, 64, 1),
    ];

    public static void Run(string[] args)
    {
        int repetitions = args.Length > 1 ? int.Parse(args[1]) : 5;
        int steps = args.Length > 2 ? int.Parse(args[2]) : 300;
        var rows = new List<InterleavedRows.Row>();
        foreach (var shape in Shapes)
        {
            rows.Add(new($"{shape.Name}, float64, together", () => Step<double>(shape, together: true)));
            rows.Add(new($"{shape.Name}, float64, each alone", () => Step<double>(shape, together: false)));
            rows.Add(new($"{shape.Name}, float32, together", () => Step<float>(shape, together: true)));
            rows.Add(new($"{shape.Name}, float32, each alone", () => Step<float>(shape, together: false)));
        }
        foreach (var shape in Shapes)
        {
            if (!SameBytes<double>(shape) || !SameBytes<float>(shape))
                throw new InvalidOperationException($"{shape.Name}: the packs computed together differ from the micro-shards computed alone.");
        }
        var times = InterleavedRows.Time(rows, repetitions, warmup: 30, steps);
        Console.WriteLine($"{Environment.ProcessorCount} cores, GEMM managed ({(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "512" : "256")}-bit), 1 thread, {steps} steps x {repetitions}");
        InterleavedRows.PrintMedians(rows, times, "ms", 1e3, "F3");
        Console.WriteLine();
        Console.WriteLine("| shape | alone / together, float64 | float32 |");
        Console.WriteLine("|---|---:|---:|");
        for (int s = 0; s < Shapes.Length; s++)
            Console.WriteLine($"| {Shapes[s].Name} | {Ratio(times[4 * s + 1], times[4 * s]):F2} | {Ratio(times[4 * s + 3], times[4 * s + 2]):F2} |");
    }

    private static double Ratio(List<double> alone, List<double> together) => Median(alone) / Median(together);

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    /// <summary>Worker 0's step of <paramref name="shape"/>; the model computes its micro-shards together or, hidden behind an interface without that side, each alone.</summary>
    private static Action<int> Step<T>(Shape shape, bool together) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (worker, model, p, x, y, pack, losses) = Setup<T>(shape, together);
        return _ => worker.Compute(model, p, x, y, pack, losses);
    }

    private static bool SameBytes<T>(Shape shape) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = Setup<T>(shape, together: true);
        var b = Setup<T>(shape, together: false);
        a.Worker.Compute(a.Model, a.P, a.X, a.Y, a.Pack, a.Losses);
        b.Worker.Compute(b.Model, b.P, b.X, b.Y, b.Pack, b.Losses);
        return a.Losses.SequenceEqual(b.Losses)
            && System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.Pack.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.Pack.AsSpan()));
    }

    private static (RankStep<T> Worker, IGradientModel<T> Model, T[] P, T[] X, T[] Y, T[] Pack, double[] Losses) Setup<T>(Shape shape, bool together)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var spec = ModelSpec.Parse(shape.Model, shape.Activation, shape.Loss, shape.Bias);
        var job = new TrainingSpec { Model = spec, Batch = shape.Batch, Workers = shape.Workers, MicroShards = shape.MicroShards };
        var plan = ExchangePlan.For(job);
        var worker = new RankStep<T>(plan, 0, shape.Workers);
        var random = new Random(0);
        T[] Draw(int count, double scale) => [.. Enumerable.Range(0, count).Select(_ => T.CreateTruncating((random.NextDouble() * 2 - 1) * scale))];
        var p = Draw(ParameterLayout.For(spec).Count, 0.05);
        int rows = worker.Layout.Rows.Count;
        var x = Draw(rows * spec.InputSize, 1.0);
        var y = new T[rows * spec.OutputSize];
        for (int r = 0; r < rows; r++) y[r * spec.OutputSize + random.Next(spec.OutputSize)] = T.One;
        var mlp = new Mlp<T>(spec, new ManagedBlas());
        IGradientModel<T> model = together ? mlp : new EachAlone<T>(mlp);
        return (worker, model, p, x, y, new T[worker.Layout.Length], new double[worker.Layout.Blocks.Count]);
    }

    /// <summary>The model with its micro-shards computed alone (<see cref="ILeafGradientModel{T}.LeavesTogether"/> false), adding in place as it does.</summary>
    private sealed class EachAlone<T>(Mlp<T> model) : ILeafGradientModel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public ModelSpec Spec => model.Spec;
        public ParameterLayout Layout => model.Layout;
        public bool LeavesTogether => false;
        public double LossAndGradient(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples, Span<T> gradient) =>
            model.LossAndGradient(parameters, x, y, samples, gradient);
        public double Loss(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples) => model.Loss(parameters, x, y, samples);
        public double LossAndPack(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples, Pack pack, Span<T> destination) =>
            model.LossAndPack(parameters, x, y, samples, pack, destination);
        public double LossAndPack(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples, Pack pack, Span<T> destination, bool add) =>
            model.LossAndPack(parameters, x, y, samples, pack, destination, add);
        public bool AddsInPlace(Pack pack) => model.AddsInPlace(pack);
        public void LeafLosses(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, ReadOnlySpan<Trainer.Core.Data.Shard> leaves, Span<double> losses) =>
            throw new InvalidOperationException("each micro-shard is computed alone");
        public void LeafPack(ReadOnlySpan<T> x, Trainer.Core.Data.Shard leaf, Pack pack, Span<T> destination) =>
            throw new InvalidOperationException("each micro-shard is computed alone");
        public void LeafPack(ReadOnlySpan<T> x, Trainer.Core.Data.Shard leaf, Pack pack, Span<T> destination, bool add) =>
            throw new InvalidOperationException("each micro-shard is computed alone");
    }
}
