using System.Diagnostics;
using System.Numerics;
using System.Runtime.Intrinsics;
using Trainer.Core.Linalg;

namespace Trainer.Bench;

/// <summary>
/// The managed GEMM against OpenBLAS on the shapes the trainer issues, one thread each, in ONE run:
/// GFLOP/s of both and their ratio per shape, medians of interleaved repetitions, with the CPU,
/// vector width and OpenBLAS kernel on every row (the same binary runs different kernels on
/// different CPUs, and under DOTNET_EnableAVX512=0 / OPENBLAS_CORETYPE).
/// </summary>
/// <remarks>
/// Not BenchmarkDotNet: its per-case processes measure backends minutes apart, so on a shared
/// machine a ratio mixes two loads; here each repetition times managed then OpenBLAS (then the
/// other order) back to back, and the median ratio is the median of the per-repetition ratios.
/// NOTE: run it with DOTNET_TieredCompilation=0: fully optimized code without PGO from the first call,
/// the code the trainer's products run (Trainer.Runtime.props: tiered, without PGO). Without PGO the JIT
/// has no profile to tell it which blocks are hot, and code that is fast with it can be slow there
/// (GemmMicroKernel's NOTE).
/// </remarks>
public static class GemmRatio
{
    /// <summary>One GEMM: op(A) m x k, op(B) k x n, from the job named in <see cref="Job"/>.</summary>
    public sealed record Shape(string Job, string Name, Transpose TransA, Transpose TransB, int M, int N, int K);

    // The seed (1000-100-10, batch 64, micro-shards of 32; --parallel split: the whole batch, half
    // the units per worker) and workload F (784-256-128-10, batch 128, micro-shards of 32, evaluation
    // in blocks of 1024 rows), and job 3 (784-1024-1024-10, batch 8192, micro-shards of 2048; its
    // output layer's narrow products left out), as Mlp, FirstLayerSplit and Evaluation call them.
    public static readonly Shape[] Shapes =
    [
        new("seed", "fwd1 x·W1ᵀ", Transpose.No, Transpose.Yes, 32, 100, 1000),
        new("seed", "fwd2 a·W2ᵀ", Transpose.No, Transpose.Yes, 32, 10, 100),
        new("seed", "δ1 δ·W2", Transpose.No, Transpose.No, 32, 100, 10),
        new("seed", "gW2 δᵀ·a", Transpose.Yes, Transpose.No, 10, 100, 32),
        new("seed", "gW1 δᵀ·x", Transpose.Yes, Transpose.No, 100, 1000, 32),
        new("seed split", "fwd1 x·W1[U]ᵀ", Transpose.No, Transpose.Yes, 64, 50, 1000),
        new("seed split", "gW1[U] δᵀ·x", Transpose.Yes, Transpose.No, 50, 1000, 64),
        new("seed split W=1", "fwd1 x·W1ᵀ", Transpose.No, Transpose.Yes, 64, 100, 1000),
        new("seed split W=1", "gW1 δᵀ·x", Transpose.Yes, Transpose.No, 100, 1000, 64),
        new("F", "fwd1 x·W1ᵀ", Transpose.No, Transpose.Yes, 32, 256, 784),
        new("F", "fwd2 a·W2ᵀ", Transpose.No, Transpose.Yes, 32, 128, 256),
        new("F", "fwd3 a·W3ᵀ", Transpose.No, Transpose.Yes, 32, 10, 128),
        new("F", "δ2 δ·W3", Transpose.No, Transpose.No, 32, 128, 10),
        new("F", "δ1 δ·W2", Transpose.No, Transpose.No, 32, 256, 128),
        new("F", "gW3 δᵀ·a", Transpose.Yes, Transpose.No, 10, 128, 32),
        new("F", "gW2 δᵀ·a", Transpose.Yes, Transpose.No, 128, 256, 32),
        new("F", "gW1 δᵀ·x", Transpose.Yes, Transpose.No, 256, 784, 32),
        new("F eval", "fwd1 x·W1ᵀ", Transpose.No, Transpose.Yes, 1024, 256, 784),
        new("job3", "fwd1 x·W1ᵀ", Transpose.No, Transpose.Yes, 2048, 1024, 784),
        new("job3", "fwd2 a·W2ᵀ", Transpose.No, Transpose.Yes, 2048, 1024, 1024),
        new("job3", "δ1 δ·W2", Transpose.No, Transpose.No, 2048, 1024, 1024),
        new("job3", "gW2 δᵀ·a", Transpose.Yes, Transpose.No, 1024, 1024, 2048),
        new("job3", "gW1 δᵀ·x", Transpose.Yes, Transpose.No, 1024, 784, 2048),
    ];

    /// <summary>dotnet run -c Release --project bench/Trainer.Bench -- ratio [repetitions] [filter] [threads]</summary>
    public static void Run(string[] args)
    {
        int repetitions = args.Length > 1 ? int.Parse(args[1]) : 7;
        string filter = args.Length > 2 ? args[2] : "";
        int threads = args.Length > 3 ? int.Parse(args[3]) : 1;   // default 1: compare the kernels, core for core
        var openBlas = Blas.SystemOpenBlas ?? throw new InvalidOperationException("OpenBLAS is not installed: apt-get install libopenblas0-pthread");
        openBlas.SetThreads(threads);
        var managed = (ManagedBlas)Blas.Create(BlasBackend.Managed);
        managed.SetThreads(threads);
        var machine = $"{CpuModel()} | Vector<double>.Count {Vector<double>.Count}, Vector512 {(Vector512.IsHardwareAccelerated ? "yes" : "no")} | OpenBLAS {openBlas.CoreName} | {threads} thread(s) each | tiered JIT {(Environment.GetEnvironmentVariable("DOTNET_TieredCompilation") == "0" ? "off, as the trainer" : "on")}";
        Console.WriteLine($"# {machine} | {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        Console.WriteLine("| job | product | op | m x n x k | precision | managed GFLOP/s | OpenBLAS GFLOP/s | OpenBLAS / managed | CPU, vectors, kernel |");
        Console.WriteLine("|---|---|---|---|---|---:|---:|---:|---|");
        var ratios = new List<double>();
        var shapes = Shapes.Where(s => (s.Job + " " + s.Name).Contains(filter, StringComparison.OrdinalIgnoreCase)).ToArray();
        // Every path compiled at its final tier before the first timing (tiered JIT recompiles hot methods after ~30 calls).
        foreach (var shape in shapes)
            foreach (var single in new[] { false, true })
            {
                var gemm = Operands(shape, single);
                for (int i = 0; i < 50; i++) { gemm(managed); gemm(openBlas); }
            }
        foreach (var shape in shapes)
            foreach (var single in new[] { false, true })
            {
                var (m, g, r) = Measure(shape, single, managed, openBlas, repetitions);
                ratios.Add(r);
                var op = $"{(shape.TransA == Transpose.No ? 'N' : 'T')}{(shape.TransB == Transpose.No ? 'N' : 'T')}";
                Console.WriteLine($"| {shape.Job} | {shape.Name} | {op} | {shape.M}x{shape.N}x{shape.K} | {(single ? "float32" : "float64")} | {m:F1} | {g:F1} | {r:F2} | {machine} |");
            }
        if (ratios.Count > 0) Console.WriteLine($"# geometric mean of OpenBLAS / managed: {Math.Exp(ratios.Average(Math.Log)):F2}; load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
    }

    // Medians over repetitions of managed GFLOP/s, OpenBLAS GFLOP/s and their per-repetition ratio.
    private static (double Managed, double OpenBlas, double Ratio) Measure(Shape s, bool single, IBlas managed, IBlas openBlas, int repetitions)
    {
        var gemm = Operands(s, single);
        double flops = 2.0 * s.M * s.N * s.K;
        // Each timing lasts about 20 ms, so the timer's resolution and one preemption matter little.
        int calls = Math.Max(1, (int)(20e-3 * 10e9 / flops));
        gemm(managed); gemm(openBlas);
        var (tm, to, ratio) = (new List<double>(), new List<double>(), new List<double>());
        for (int rep = 0; rep < repetitions; rep++)
        {
            double a, b;
            if (rep % 2 == 0) { a = Time(gemm, managed, calls); b = Time(gemm, openBlas, calls); }
            else { b = Time(gemm, openBlas, calls); a = Time(gemm, managed, calls); }
            tm.Add(flops * calls / a / 1e9); to.Add(flops * calls / b / 1e9); ratio.Add(a / b);
        }
        return (Median(tm), Median(to), Median(ratio));
    }

    private static double Time(Action<IBlas> gemm, IBlas blas, int calls)
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < calls; i++) gemm(blas);
        return clock.Elapsed.TotalSeconds;
    }

    private static Action<IBlas> Operands(Shape s, bool single) => single ? Operands<float>(s) : Operands<double>(s);

    private static Action<IBlas> Operands<T>(Shape s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var random = new Random(1);
        // Stored: A is m x k (k x m when transposed), B is k x n (n x k when transposed).
        var a = new T[s.M * s.K].Select(_ => T.CreateTruncating(random.NextDouble() * 2 - 1)).ToArray();
        var b = new T[s.K * s.N].Select(_ => T.CreateTruncating(random.NextDouble() * 2 - 1)).ToArray();
        var c = new T[s.M * s.N];
        int lda = s.TransA == Transpose.No ? s.K : s.M, ldb = s.TransB == Transpose.No ? s.N : s.K;
        return blas => blas.Gemm<T>(s.TransA, s.TransB, s.M, s.N, s.K, a, lda, b, ldb, c, s.N);
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }

    private static string CpuModel() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
}
