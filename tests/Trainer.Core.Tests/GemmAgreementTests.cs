using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;

namespace Trainer.Core.Tests;

/// <summary>OpenBLAS and the managed GEMM against a plain triple loop, and against each other.</summary>
public class GemmAgreementTests
{
    public static TheoryData<Transpose, Transpose, double, double> EveryTransposeAndScale()
    {
        var data = new TheoryData<Transpose, Transpose, double, double>();
        foreach (var ta in Enum.GetValues<Transpose>())
            foreach (var tb in Enum.GetValues<Transpose>())
                foreach (var (alpha, beta) in new[] { (1.0, 0.0), (1.0, 1.0), (-0.7, 0.0), (2.5, -1.5), (0.0, 0.5) })
                    data.Add(ta, tb, alpha, beta);
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryTransposeAndScale))]
    public void Dgemm_BackendsAgreeWithReference_ForEveryTransposeAndScale(Transpose ta, Transpose tb, double alpha, double beta)
    {
        var openBlas = Backends.RequireOpenBlas();
        var problem = GemmProblem.Create(ta, tb, m: 13, n: 11, k: 17, pad: 3, seed: 5);
        var expected = problem.Reference(alpha, beta);
        var viaOpenBlas = problem.Run(openBlas, alpha, beta);
        var viaManaged = problem.Run(new ManagedBlas(), alpha, beta);

        Assert.True(TestArrays.MaxRelativeDifference(viaManaged, expected) < 1e-12, "managed vs reference");
        Assert.True(TestArrays.MaxRelativeDifference(viaOpenBlas, expected) < 1e-12, "openblas vs reference");
        Assert.True(TestArrays.MaxRelativeDifference(viaOpenBlas, viaManaged) < 1e-12, "openblas vs managed");
        problem.AssertPaddingUntouched(viaManaged);
        problem.AssertPaddingUntouched(viaOpenBlas);
    }

    [Theory]
    [MemberData(nameof(EveryTransposeAndScale))]
    public void Sgemm_BackendsAgreeWithReference_ForEveryTransposeAndScale(Transpose ta, Transpose tb, double alpha, double beta)
    {
        var openBlas = Backends.RequireOpenBlas();
        var problem = GemmProblem.Create(ta, tb, m: 13, n: 11, k: 17, pad: 2, seed: 6);
        // The reference runs in double on the float-rounded inputs.
        var expected = problem.Rounded().Reference((float)alpha, (float)beta);
        var viaOpenBlas = problem.RunSingle(openBlas, (float)alpha, (float)beta);
        var viaManaged = problem.RunSingle(new ManagedBlas(), (float)alpha, (float)beta);

        Assert.True(TestArrays.MaxRelativeDifference(viaManaged, expected) < 1e-5, "managed vs reference");
        Assert.True(TestArrays.MaxRelativeDifference(viaOpenBlas, expected) < 1e-5, "openblas vs reference");
        problem.AssertPaddingUntouched(viaManaged);
        problem.AssertPaddingUntouched(viaOpenBlas);
    }

    [Theory]
    [MemberData(nameof(EveryTransposeAndScale))]
    public void Dgemm_OpenBlasCutInBlocksOfRowsOrColumns_AgreesWithReference(Transpose ta, Transpose tb, double alpha, double beta)
    {
        // Over 2M multiply-adds, so OpenBlas cuts C into blocks (of rows when m > n, else of columns), each its own call.
        Backends.RequireOpenBlas();
        var openBlas = OpenBlas.TryLoad(out _)!;
        foreach (var (m, n) in new[] { (300, 40), (40, 300) })
        {
            var problem = GemmProblem.Create(ta, tb, m, n, k: 200, pad: 3, seed: 8);
            var expected = problem.Reference(alpha, beta);
            foreach (int threads in new[] { 1, 3 })
            {
                openBlas.SetThreads(threads);
                var viaOpenBlas = problem.Run(openBlas, alpha, beta);
                Assert.True(TestArrays.MaxRelativeDifference(viaOpenBlas, expected) < 1e-12, $"{m} x {n}, {threads} threads: openblas vs reference");
                problem.AssertPaddingUntouched(viaOpenBlas);
            }
        }
    }

    [Theory]
    [InlineData("managed")]
    [InlineData("openblas")]
    public void Gemm_WithBetaZero_IgnoresNaNsInC(string backend)
    {
        var blas = Backends.ByName(backend);
        double[] a = [1, 2, 3, 4], b = [5, 6, 7, 8], c = [double.NaN, double.NaN, double.NaN, double.NaN];
        blas.Gemm(Transpose.No, Transpose.No, 2, 2, 2, 1.0, a, 2, b, 2, 0.0, c, 2);
        Assert.Equal([19.0, 22.0, 43.0, 50.0], c);
    }

    [Theory]
    [InlineData("managed")]
    [InlineData("openblas")]
    public void Gemm_WithEmptyInnerDimension_ScalesCByBeta(string backend)
    {
        var blas = Backends.ByName(backend);
        double[] c = [1, 2, 3, 4];
        blas.Gemm(Transpose.No, Transpose.No, 2, 2, 0, 1.0, [], 1, [], 2, 0.5, c, 2);
        Assert.Equal([0.5, 1.0, 1.5, 2.0], c);
    }

    [Fact]
    public void MlpGradient_IsTheSameWithOpenBlasAndManaged()
    {
        var openBlas = Backends.RequireOpenBlas();
        foreach (var spec in new[] { ModelSpec.Seed, new ModelSpec([30, 20, 10, 5], Activation.Tanh, LossKind.Sse, bias: true) })
        {
            var layout = ParameterLayout.For(spec);
            var data = Synthetic.Data(64, spec.InputSize, spec.OutputSize, seed: 7);
            var p = Initializer.Create(layout, InitKind.Normal, seed: 7);
            double[] gOpen = new double[layout.Count], gManaged = new double[layout.Count];
            double lOpen = new Mlp(spec, openBlas).LossAndGradient(p, data.X, data.Y, data.Count, gOpen);
            double lManaged = new Mlp(spec, new ManagedBlas()).LossAndGradient(p, data.X, data.Y, data.Count, gManaged);
            Assert.True(TestArrays.RelativeDifference(lOpen, lManaged) < 1e-12, $"{spec}: loss {lOpen:R} vs {lManaged:R}");
            Assert.True(TestArrays.MaxRelativeDifference(gOpen, gManaged) < 1e-12, $"{spec}: gradients differ");
        }
    }

    /// <summary>A GEMM with every leading dimension <c>pad</c> wider than its matrix; padding holds NaN in A and B, a sentinel in C.</summary>
    private sealed record GemmProblem(Transpose TA, Transpose TB, int M, int N, int K, double[] A, int Lda, double[] B, int Ldb, double[] C, int Ldc)
    {
        private const double Sentinel = 12345.5;

        public static GemmProblem Create(Transpose ta, Transpose tb, int m, int n, int k, int pad, int seed)
        {
            var (aRows, aCols) = ta == Transpose.No ? (m, k) : (k, m);
            var (bRows, bCols) = tb == Transpose.No ? (k, n) : (n, k);
            return new(ta, tb, m, n, k,
                Padded(aRows, aCols, aCols + pad, seed, double.NaN), aCols + pad,
                Padded(bRows, bCols, bCols + pad, seed + 1, double.NaN), bCols + pad,
                Padded(m, n, n + pad, seed + 2, Sentinel), n + pad);
        }

        public GemmProblem Rounded() => this with { A = [.. A.Select(v => (double)(float)v)], B = [.. B.Select(v => (double)(float)v)], C = [.. C.Select(v => (double)(float)v)] };

        public double[] Run(IBlas blas, double alpha, double beta)
        {
            var c = (double[])C.Clone();
            blas.Gemm(TA, TB, M, N, K, alpha, A, Lda, B, Ldb, beta, c, Ldc);
            return c;
        }

        public double[] RunSingle(IBlas blas, float alpha, float beta)
        {
            float[] a = [.. A.Select(v => (float)v)], b = [.. B.Select(v => (float)v)], c = [.. C.Select(v => (float)v)];
            blas.Gemm(TA, TB, M, N, K, alpha, a, Lda, b, Ldb, beta, c, Ldc);
            return [.. c.Select(v => (double)v)];
        }

        /// <summary>C = alpha·op(A)·op(B) + beta·C by definition, padding copied through.</summary>
        public double[] Reference(double alpha, double beta)
        {
            var c = (double[])C.Clone();
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                {
                    double sum = 0;
                    for (int p = 0; p < K; p++)
                        sum += (TA == Transpose.No ? A[i * Lda + p] : A[p * Lda + i]) * (TB == Transpose.No ? B[p * Ldb + j] : B[j * Ldb + p]);
                    c[i * Ldc + j] = alpha * sum + beta * C[i * Ldc + j];
                }
            return c;
        }

        public void AssertPaddingUntouched(double[] c)
        {
            for (int i = 0; i < M; i++)
                for (int j = N; j < Ldc; j++)
                    Assert.Equal((double)(float)Sentinel, c[i * Ldc + j]);
        }

        private static double[] Padded(int rows, int cols, int ld, int seed, double padding)
        {
            var values = TestArrays.Normal(rows * ld, seed);
            for (int r = 0; r < rows; r++)
                for (int c = cols; c < ld; c++) values[r * ld + c] = padding;
            return values;
        }
    }
}
