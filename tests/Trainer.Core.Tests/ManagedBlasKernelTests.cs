using Trainer.Core.Linalg;

namespace Trainer.Core.Tests;

/// <summary>
/// The blocked managed GEMM against a plain triple loop, on sizes chosen to hit every edge of the
/// blocking: partial micro-tiles (MR = 6 rows and NR = 2W columns for the Vector&lt;T&gt; kernel, 4 and
/// 2V for the 512-bit one), more than one MC (96), KC (256) and NC (512) block, padded leading
/// dimensions, and every transpose combination; both kernels, and the same bits from both.
/// </summary>
public class ManagedBlasKernelTests
{
    private static readonly (int M, int N, int K)[] Sizes =
        [(1, 1, 1), (5, 7, 3), (6, 8, 1), (7, 9, 13), (13, 17, 31), (97, 33, 257), (11, 515, 19), (64, 100, 1000), (4, 16, 5), (9, 33, 300)];

    public static TheoryData<Transpose, Transpose, int, int, int, bool> Shapes()
    {
        var data = new TheoryData<Transpose, Transpose, int, int, int, bool>();
        foreach (bool wide in new[] { false, true })
            foreach (var ta in new[] { Transpose.No, Transpose.Yes })
                foreach (var tb in new[] { Transpose.No, Transpose.Yes })
                    foreach (var (m, n, k) in Sizes)
                        data.Add(ta, tb, m, n, k, wide);
        return data;
    }

    public static TheoryData<Transpose, Transpose, int, int, int> ShapesOnce() => EveryTranspose(Sizes);

    /// <summary>Each size under each of the four transpose combinations.</summary>
    internal static TheoryData<Transpose, Transpose, int, int, int> EveryTranspose((int M, int N, int K)[] sizes)
    {
        var data = new TheoryData<Transpose, Transpose, int, int, int>();
        foreach (var ta in new[] { Transpose.No, Transpose.Yes })
            foreach (var tb in new[] { Transpose.No, Transpose.Yes })
                foreach (var (m, n, k) in sizes)
                    data.Add(ta, tb, m, n, k);
        return data;
    }

    [Theory]
    [MemberData(nameof(ShapesOnce))]
    public void TheTwoKernels_GiveEveryElementTheSameBits(Transpose ta, Transpose tb, int m, int n, int k)
    {
        // Every element of C gets the same chain of fused multiply-adds in both kernels; only the tile
        // around it differs. This is what lets a job's bits not depend on whether its silo has AVX-512.
        var (a, lda, b, ldb, c, ldc) = Operands(ta, tb, m, n, k, seed: m + 3 * n + 5 * k);
        var narrow = (double[])c.Clone();
        new ManagedBlas(wide: false).Gemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, 0.0, narrow, ldc);
        new ManagedBlas(wide: true).Gemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc);
        Assert.Equal(narrow, c);

        var narrowSingle = new float[c.Length];
        var wideSingle = new float[c.Length];
        var (af, bf) = (Array.ConvertAll(a, v => (float)v), Array.ConvertAll(b, v => (float)v));
        new ManagedBlas(wide: false).Gemm(ta, tb, m, n, k, 1f, af, lda, bf, ldb, 0f, narrowSingle, ldc);
        new ManagedBlas(wide: true).Gemm(ta, tb, m, n, k, 1f, af, lda, bf, ldb, 0f, wideSingle, ldc);
        Assert.Equal(narrowSingle, wideSingle);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Double_MatchesTripleLoop_WithPaddedStridesAndBeta(Transpose ta, Transpose tb, int m, int n, int k, bool wide)
    {
        var (a, lda, b, ldb, c, ldc) = Operands(ta, tb, m, n, k, seed: m * 31 + n * 7 + k);
        var expected = (double[])c.Clone();
        Reference(ta, tb, m, n, k, -0.75, a, lda, b, ldb, 0.5, expected, ldc);

        new ManagedBlas(wide).Gemm(ta, tb, m, n, k, -0.75, a, lda, b, ldb, 0.5, c, ldc);

        for (int i = 0; i < c.Length; i++)
            Assert.True(Math.Abs(c[i] - expected[i]) <= 1e-12 * (1 + Math.Abs(expected[i])) * Math.Sqrt(k),
                $"C[{i}] = {c[i]}, expected {expected[i]}");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Float_MatchesTripleLoop(Transpose ta, Transpose tb, int m, int n, int k, bool wide)
    {
        var (a, lda, b, ldb, c, ldc) = Operands(ta, tb, m, n, k, seed: k);
        var expected = new double[c.Length];
        Reference(ta, tb, m, n, k, 1.0, a, lda, b, ldb, 0.0, expected, ldc);
        var cf = new float[c.Length];

        new ManagedBlas(wide).Gemm(ta, tb, m, n, k, 1f, Array.ConvertAll(a, v => (float)v), lda,
            Array.ConvertAll(b, v => (float)v), ldb, 0f, cf, ldc);

        for (int i = 0; i < cf.Length; i++)
            Assert.True(Math.Abs(cf[i] - expected[i]) <= 1e-5 * Math.Sqrt(k) * (1 + Math.Abs(expected[i])),
                $"C[{i}] = {cf[i]}, expected {expected[i]}");
    }

    [Fact]
    public void BetaZero_OverwritesNaNsInC_AndLeavesThePaddingAlone()
    {
        var (a, lda, b, ldb, c, ldc) = Operands(Transpose.No, Transpose.Yes, 7, 9, 5, seed: 3);
        for (int i = 0; i < 7; i++)
        {
            for (int j = 0; j < 9; j++) c[i * ldc + j] = double.NaN;
            for (int j = 9; j < ldc && i * ldc + j < c.Length; j++) c[i * ldc + j] = 42;
        }

        new ManagedBlas().Gemm(Transpose.No, Transpose.Yes, 7, 9, 5, 1.0, a, lda, b, ldb, 0.0, c, ldc);

        for (int i = 0; i < 7; i++)
        {
            for (int j = 0; j < 9; j++) Assert.False(double.IsNaN(c[i * ldc + j]), $"C[{i},{j}] is NaN");
            for (int j = 9; j < ldc && i * ldc + j < c.Length; j++) Assert.Equal(42, c[i * ldc + j]);
        }
    }

    /// <summary>Random operands whose leading dimensions exceed their column counts by 3.</summary>
    private static (double[] A, int Lda, double[] B, int Ldb, double[] C, int Ldc) Operands(
        Transpose ta, Transpose tb, int m, int n, int k, int seed)
    {
        var random = new Random(seed);
        var (aRows, aCols) = ta == Transpose.No ? (m, k) : (k, m);
        var (bRows, bCols) = tb == Transpose.No ? (k, n) : (n, k);
        int lda = aCols + 3, ldb = bCols + 3, ldc = n + 3;
        double[] Fill(int count) => [.. Enumerable.Range(0, count).Select(_ => random.NextDouble() * 2 - 1)];
        return (Fill((aRows - 1) * lda + aCols), lda, Fill((bRows - 1) * ldb + bCols), ldb, Fill((m - 1) * ldc + n), ldc);
    }

    private static void Reference(Transpose ta, Transpose tb, int m, int n, int k, double alpha,
        double[] a, int lda, double[] b, int ldb, double beta, double[] c, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                    sum += (ta == Transpose.No ? a[i * lda + p] : a[p * lda + i]) * (tb == Transpose.No ? b[p * ldb + j] : b[j * ldb + p]);
                c[i * ldc + j] = alpha * sum + (beta == 0 ? 0 : beta * c[i * ldc + j]);
            }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void AddingInPlace_UpToOneKBlock_RoundsAsAddingTheProductFormedAlone(Transpose ta, Transpose tb, int m, int n, int k, bool wide)
    {
        // The promise IBlas.SinglePassDepth makes, which the micro-shard sums rely on to skip a scratch pass.
        var blas = new ManagedBlas(wide);
        if (k > blas.SinglePassDepth) return;
        var a = TestArrays.Normal(m * k, 1);
        var b = TestArrays.Normal(k * n, 2);
        var c = TestArrays.Normal(m * n, 3, std: 10);
        int lda = ta == Transpose.No ? k : m, ldb = tb == Transpose.No ? n : k;
        var product = new double[m * n];
        blas.Gemm(ta, tb, m, n, k, a, lda, b, ldb, product, n);
        var alone = c.Zip(product, (x, y) => x + y).ToArray();
        var inPlace = (double[])c.Clone();
        blas.GemmAdd(ta, tb, m, n, k, a, lda, b, ldb, inPlace, n);
        Assert.Equal(alone, inPlace);
    }
}
