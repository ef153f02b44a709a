using Trainer.Core.Linalg;

namespace Trainer.Core.Tests;

/// <summary>
/// The managed GEMM's bits against a scalar reference that spells out the order it promises: for each
/// element of C and each k block of <see cref="ManagedBlas.SinglePassDepth"/>, a chain of fused
/// multiply-adds over p from zero, then added to C. Both kernels (256- and 512-bit), every transpose,
/// the trainer's real shapes (the seed's and workload F's products, micro-shards of 32) and edge
/// sizes, in float64 and float32, with 1 to 3 threads: the same bits every time, which is what lets a
/// job's weights not depend on the CPU's vector width, the silo's core count or the packing code.
/// </summary>
public class ManagedBlasBitsTests
{
    private static readonly (int M, int N, int K)[] Sizes =
    [
        (32, 100, 1000), (32, 10, 100), (32, 100, 10), (10, 100, 32), (100, 1000, 32),   // seed, micro-shards of 32
        (64, 50, 1000), (50, 1000, 64), (64, 100, 1000), (100, 1000, 64),               // seed split
        (32, 256, 784), (32, 128, 256), (32, 10, 128), (32, 128, 10), (32, 256, 128),   // workload F
        (10, 128, 32), (128, 256, 32), (256, 784, 32), (200, 256, 784),
        (1, 1, 1), (7, 3, 5), (13, 17, 257), (5, 1031, 9), (97, 33, 513), (3, 2, 300),     // edges of every block
    ];

    public static TheoryData<Transpose, Transpose, int, int, int> Shapes() => ManagedBlasKernelTests.EveryTranspose(Sizes);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BothKernels_AnyThreadCount_GiveTheReferenceBits_Float64(Transpose ta, Transpose tb, int m, int n, int k)
    {
        var (a, lda, b, ldb) = Operands(ta, tb, m, n, k, seed: m + 7 * n + 13 * k);
        var expected = Reference(ta, tb, m, n, k, a, lda, b, ldb, Math.FusedMultiplyAdd);
        foreach (bool wide in new[] { false, true })
            foreach (int threads in new[] { 1, 2, 3 })
            {
                var c = new double[m * n];
                new ManagedBlas(wide, threads).Gemm(ta, tb, m, n, k, a, lda, b, ldb, c, n);
                Assert.True(expected.AsSpan().SequenceEqual(c), $"wide {wide}, {threads} threads: first difference at {FirstDifference(expected, c)}");
            }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BothKernels_AnyThreadCount_GiveTheReferenceBits_Float32(Transpose ta, Transpose tb, int m, int n, int k)
    {
        var (ad, lda, bd, ldb) = Operands(ta, tb, m, n, k, seed: 3 * m + n + 11 * k);
        var (a, b) = (Array.ConvertAll(ad, v => (float)v), Array.ConvertAll(bd, v => (float)v));
        var expected = Reference(ta, tb, m, n, k, a, lda, b, ldb, MathF.FusedMultiplyAdd);
        foreach (bool wide in new[] { false, true })
            foreach (int threads in new[] { 1, 2, 3 })
            {
                var c = new float[m * n];
                new ManagedBlas(wide, threads).Gemm(ta, tb, m, n, k, a, lda, b, ldb, c, n);
                Assert.True(expected.AsSpan().SequenceEqual(c), $"wide {wide}, {threads} threads: first difference at {FirstDifference(expected, c)}");
            }
    }

    /// <summary>C = op(A)·op(B), element by element in the promised order (alpha 1, beta 0).</summary>
    internal static T[] Reference<T>(Transpose ta, Transpose tb, int m, int n, int k, T[] a, int lda, T[] b, int ldb, Func<T, T, T, T> fma)
        where T : struct, System.Numerics.IFloatingPointIeee754<T>
    {
        int kc = new ManagedBlas().SinglePassDepth;
        var c = new T[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T sum = T.Zero;
                for (int p0 = 0; p0 < k; p0 += kc)
                {
                    T block = T.Zero;
                    for (int p = p0; p < Math.Min(k, p0 + kc); p++)
                        block = fma(ta == Transpose.No ? a[i * lda + p] : a[p * lda + i], tb == Transpose.No ? b[p * ldb + j] : b[j * ldb + p], block);
                    sum += block;
                }
                c[i * n + j] = sum;
            }
        return c;
    }

    internal static (double[] A, int Lda, double[] B, int Ldb) Operands(Transpose ta, Transpose tb, int m, int n, int k, int seed)
    {
        int lda = ta == Transpose.No ? k : m, ldb = tb == Transpose.No ? n : k;
        return (TestArrays.Normal(m * k, seed), lda, TestArrays.Normal(k * n, seed + 1), ldb);
    }

    private static string FirstDifference<T>(T[] expected, T[] actual)
    {
        int i = expected.AsSpan().CommonPrefixLength(actual);
        return i == expected.Length ? "none" : $"{i}: expected {expected[i]}, got {actual[i]}";
    }
}
