using Trainer.Core.Linalg;

namespace Trainer.Core.Tests;

/// <summary>
/// OpenBLAS's bits at 2 to 4 threads against its bits at one: the trainer's real shapes and edge
/// sizes (<see cref="ManagedBlasBitsTests"/>'), every transpose, float64 and float32. A silo sets the
/// threads per GEMM from its cores and the workers it hosts, so a job restored on fewer silos runs
/// its GEMMs on another count; its losses and weights stay those of the undisturbed job only if the
/// count leaves every element's bits alone.
/// </summary>
public class OpenBlasBitsTests
{
    public static TheoryData<Transpose, Transpose, int, int, int> Shapes() => ManagedBlasBitsTests.Shapes();

    [Theory]
    [MemberData(nameof(Shapes))]
    public void AnyThreadCount_GivesTheOneThreadBits_Float64(Transpose ta, Transpose tb, int m, int n, int k)
    {
        var (a, lda, b, ldb) = ManagedBlasBitsTests.Operands(ta, tb, m, n, k, seed: m + 7 * n + 13 * k);
        AssertTheSameBitsAtAnyThreadCount(Own(), ta, tb, m, n, k, a, lda, b, ldb);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void AnyThreadCount_GivesTheOneThreadBits_Float32(Transpose ta, Transpose tb, int m, int n, int k)
    {
        var (a, lda, b, ldb) = ManagedBlasBitsTests.Operands(ta, tb, m, n, k, seed: 3 * m + n + 11 * k);
        AssertTheSameBitsAtAnyThreadCount(Own(), ta, tb, m, n, k, Array.ConvertAll(a, v => (float)v), lda, Array.ConvertAll(b, v => (float)v), ldb);
    }

    /// <summary>An instance of its own, so setting its threads leaves the process's shared one alone.</summary>
    private static OpenBlas Own()
    {
        Backends.RequireOpenBlas();
        return OpenBlas.TryLoad(out _)!;
    }

    private static void AssertTheSameBitsAtAnyThreadCount<T>(OpenBlas blas, Transpose ta, Transpose tb, int m, int n, int k, T[] a, int lda, T[] b, int ldb)
        where T : unmanaged, IEquatable<T>
    {
        var expected = Product(blas, 1, ta, tb, m, n, k, a, lda, b, ldb);
        foreach (int threads in new[] { 2, 3, 4 })
        {
            var c = Product(blas, threads, ta, tb, m, n, k, a, lda, b, ldb);
            int i = expected.AsSpan().CommonPrefixLength(c);
            Assert.True(i == c.Length, $"{threads} threads: first difference at {i} (row {i / n}, column {i % n}): expected {(i < c.Length ? expected[i] : default)}, got {(i < c.Length ? c[i] : default)}");
        }
    }

    private static T[] Product<T>(OpenBlas blas, int threads, Transpose ta, Transpose tb, int m, int n, int k, T[] a, int lda, T[] b, int ldb)
        where T : unmanaged
    {
        blas.SetThreads(threads);
        var c = new T[m * n];
        blas.Gemm(ta, tb, m, n, k, a, lda, b, ldb, c, n);
        return c;
    }
}
