using BenchmarkDotNet.Attributes;
using Trainer.Core.Linalg;

namespace Trainer.Bench;

/// <summary>
/// The five GEMMs of one seed step (B = 64 samples, In = 1000, H = 100, Out = 10; row-major,
/// one sample per row, as <see cref="Trainer.Core.Models.Mlp"/> calls them), per backend.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 8)]
[MemoryDiagnoser]
public class GemmBenchmarks
{
    /// <summary>One GEMM of the seed step: op(A) m x k, op(B) k x n.</summary>
    public sealed record Shape(string Name, Transpose TransA, Transpose TransB, int M, int N, int K)
    {
        public override string ToString() => Name;
    }

    public static IEnumerable<Shape> Shapes =>
    [
        new("fwd1 x·W1ᵀ 64x100x1000 NT", Transpose.No, Transpose.Yes, 64, 100, 1000),
        new("fwd2 a·W2ᵀ 64x10x100 NT", Transpose.No, Transpose.Yes, 64, 10, 100),
        new("gW2 δᵀ·a 10x100x64 TN", Transpose.Yes, Transpose.No, 10, 100, 64),
        new("δ1 δ·W2 64x100x10 NN", Transpose.No, Transpose.No, 64, 100, 10),
        new("gW1 δᵀ·x 100x1000x64 TN", Transpose.Yes, Transpose.No, 100, 1000, 64),
    ];

    [ParamsSource(nameof(Shapes))]
    public Shape Case { get; set; } = null!;

    [Params("openblas", "managed")]
    public string Backend { get; set; } = "";

    private IBlas _blas = null!;
    private double[] _a = [], _b = [], _c = [];
    private float[] _af = [], _bf = [], _cf = [];
    private int _lda, _ldb;

    [GlobalSetup]
    public void Setup()
    {
        _blas = Blas.Create(Backend == "managed" ? BlasBackend.Managed : BlasBackend.OpenBlas);
        var (m, n, k) = (Case.M, Case.N, Case.K);
        // Stored shapes: A is m x k (or k x m transposed), B is k x n (or n x k transposed).
        _lda = Case.TransA == Transpose.No ? k : m;
        _ldb = Case.TransB == Transpose.No ? n : k;
        var random = new Random(1);
        _a = Fill(m * k, random);
        _b = Fill(k * n, random);
        _c = new double[m * n];
        _af = Array.ConvertAll(_a, v => (float)v);
        _bf = Array.ConvertAll(_b, v => (float)v);
        _cf = new float[m * n];
    }

    [Benchmark(Baseline = true)]
    public void Float64() =>
        _blas.Gemm(Case.TransA, Case.TransB, Case.M, Case.N, Case.K, 1.0, _a, _lda, _b, _ldb, 0.0, _c, Case.N);

    [Benchmark]
    public void Float32() =>
        _blas.Gemm(Case.TransA, Case.TransB, Case.M, Case.N, Case.K, 1f, _af, _lda, _bf, _ldb, 0f, _cf, Case.N);

    private static double[] Fill(int count, Random random)
    {
        var values = new double[count];
        for (int i = 0; i < count; i++) values[i] = random.NextDouble() * 2 - 1;
        return values;
    }
}
