using System.Numerics;
using Trainer.Core.Linalg;

namespace Trainer.Core.Tests;

/// <summary>
/// The managed GEMM's narrow path (GemmNarrow: n, k or m up to 16, the output layer's products) against
/// the blocked path and against the scalar reference of <see cref="ManagedBlasBitsTests"/>, bit for bit:
/// every n and k from 1 to 17 (one past the narrow width), m on and off the 6-row tile, all four
/// transposes, float64 and float32, with beta 0 (C written without being read) and beta 1 (C added to).
/// </summary>
public class ManagedBlasNarrowTests
{
    private static readonly int[] Rows = [1, 5, 7, 13, 32, 33];

    public static TheoryData<Transpose, Transpose> EveryTranspose() => new()
    {
        { Transpose.No, Transpose.No }, { Transpose.No, Transpose.Yes }, { Transpose.Yes, Transpose.No }, { Transpose.Yes, Transpose.Yes },
    };

    [Theory]
    [MemberData(nameof(EveryTranspose))]
    public void NarrowN_GivesTheBlockedPathsBits_AndTheReferences(Transpose ta, Transpose tb)
    {
        foreach (int m in Rows)
            for (int n = 1; n <= 17; n++)
                foreach (int k in new[] { 1, 3, 10, 100, 128 })
                    AllPathsAgree(ta, tb, m, n, k);
    }

    [Theory]
    [MemberData(nameof(EveryTranspose))]
    public void NarrowK_GivesTheBlockedPathsBits_AndTheReferences(Transpose ta, Transpose tb)
    {
        foreach (int m in Rows)
            for (int k = 1; k <= 17; k++)
                foreach (int n in new[] { 4, 9, 100, 128 })
                    AllPathsAgree(ta, tb, m, n, k);
    }

    [Theory]
    [MemberData(nameof(EveryTranspose))]
    public void NarrowM_GivesTheBlockedPathsBits_AndTheReferences(Transpose ta, Transpose tb)
    {
        for (int m = 1; m <= 17; m++)
            foreach (var (n, k) in new[] { (100, 32), (128, 32), (33, 7), (20, 256) })
                AllPathsAgree(ta, tb, m, n, k);
    }

    [Theory]
    [InlineData(Transpose.No, Transpose.No, 16, 4096, 256)]    // m narrow: more than 1M multiply-adds, so split over threads
    [InlineData(Transpose.Yes, Transpose.No, 4000, 16, 200)]   // n narrow
    public void LargeNarrowProducts_SplitOverThreads_GiveTheSameBits(Transpose ta, Transpose tb, int m, int n, int k)
    {
        var (a, lda, b, ldb) = Operands(ta, tb, m, n, k, seed: m + n + k);
        var expected = ManagedBlasBitsTests.Reference(ta, tb, m, n, k, a, lda, b, ldb, Math.FusedMultiplyAdd);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var c = new double[m * n];
            new ManagedBlas(wide: false, threads).Gemm(ta, tb, m, n, k, a, lda, b, ldb, c, n);
            Assert.True(expected.AsSpan().SequenceEqual(c), $"{threads} threads: {FirstDifference(expected, c)}");
        }
    }

    [Theory]
    [MemberData(nameof(EveryTranspose))]
    public void ASumThatUnderflowsToNegativeZero_IsStoredAsPositiveZero_AsInTheBlockedPath(Transpose ta, Transpose tb)
    {
        // -1e-200 · 1e-200 rounds to -0: the sum is -0, and C = +0 + (-0) = +0 whether C was cleared first
        // (the blocked path) or written without being read (the narrow path with beta 0).
        const int m = 7, n = 11, k = 3;   // edge tiles through every width of AddEdge: vectors, a 128-bit one, scalars
        var a = Enumerable.Repeat(-1e-200, m * k).ToArray();
        var b = Enumerable.Repeat(1e-200, k * n).ToArray();
        int lda = ta == Transpose.No ? k : m, ldb = tb == Transpose.No ? n : k;
        foreach (bool narrow in new[] { false, true })
        {
            var c = Enumerable.Repeat(double.NaN, m * n).ToArray();
            new ManagedBlas(wide: false, narrow: narrow).Gemm(ta, tb, m, n, k, a, lda, b, ldb, c, n);
            Assert.All(c, v => Assert.True(v == 0 && !double.IsNegative(v), $"narrow {narrow}: {v}"));
        }
    }

    /// <summary>
    /// One shape: the narrow path (both kernel widths, which take it or not by their own rule) and the blocked
    /// path against the reference, in float64 and float32, writing C (beta 0, over NaNs) and adding to it (beta 1).
    /// </summary>
    private static void AllPathsAgree(Transpose ta, Transpose tb, int m, int n, int k)
    {
        var (a, lda, b, ldb) = Operands(ta, tb, m, n, k, seed: 100 * m + 10 * n + k);
        Agree(ta, tb, m, n, k, a, lda, b, ldb, Math.FusedMultiplyAdd);
        Agree(ta, tb, m, n, k, Array.ConvertAll(a, v => (float)v), lda, Array.ConvertAll(b, v => (float)v), ldb, MathF.FusedMultiplyAdd);
    }

    private static void Agree<T>(Transpose ta, Transpose tb, int m, int n, int k, T[] a, int lda, T[] b, int ldb, Func<T, T, T, T> fma)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var product = ManagedBlasBitsTests.Reference(ta, tb, m, n, k, a, lda, b, ldb, fma);
        var start = Array.ConvertAll(TestArrays.Normal(m * n, m + n + k, std: 3), T.CreateTruncating);
        var sum = start.Zip(product, (x, y) => x + y).ToArray();   // k <= one k block here: C + the block's sum
        foreach (bool wide in new[] { false, true })
            foreach (bool narrow in new[] { false, true })
            {
                var blas = new ManagedBlas(wide, narrow: narrow);
                var c = Enumerable.Repeat(T.NaN, m * n).ToArray();
                blas.Gemm(ta, tb, m, n, k, a, lda, b, ldb, c, n);
                Assert.True(product.AsSpan().SequenceEqual(c), $"{ta}{tb} {m}x{n}x{k} {typeof(T).Name}, wide {wide}, narrow {narrow}, beta 0: {FirstDifference(product, c)}");
                c = (T[])start.Clone();
                blas.GemmAdd(ta, tb, m, n, k, a, lda, b, ldb, c, n);
                Assert.True(sum.AsSpan().SequenceEqual(c), $"{ta}{tb} {m}x{n}x{k} {typeof(T).Name}, wide {wide}, narrow {narrow}, beta 1: {FirstDifference(sum, c)}");
            }
    }

    private static (double[] A, int Lda, double[] B, int Ldb) Operands(Transpose ta, Transpose tb, int m, int n, int k, int seed)
    {
        int lda = ta == Transpose.No ? k : m, ldb = tb == Transpose.No ? n : k;
        return (TestArrays.Normal(m * k, seed), lda, TestArrays.Normal(k * n, seed + 1), ldb);
    }

    private static string FirstDifference<T>(T[] expected, T[] actual) where T : IEquatable<T>
    {
        int i = expected.AsSpan().CommonPrefixLength(actual);
        return i == expected.Length ? "none" : $"element {i}: expected {expected[i]}, got {actual[i]}";
    }
}
