namespace Trainer.Core.Linalg;

/// <summary>Argument checks shared by every <see cref="IBlas"/> implementation, done once per call.</summary>
internal static class GemmChecks
{
    public static void Validate<T>(Transpose transA, Transpose transB, int m, int n, int k,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"GEMM dimensions must be non-negative, got m={m}, n={n}, k={k}.");
        // Stored shapes (rows x cols) of A and B before op() is applied.
        var (aRows, aCols) = transA == Transpose.No ? (m, k) : (k, m);
        var (bRows, bCols) = transB == Transpose.No ? (k, n) : (n, k);
        Check("A", a.Length, aRows, aCols, lda);
        Check("B", b.Length, bRows, bCols, ldb);
        Check("C", c.Length, m, n, ldc);
    }

    private static void Check(string name, int length, int rows, int cols, int ld)
    {
        if (ld < Math.Max(1, cols))
            throw new ArgumentOutOfRangeException(nameof(ld), $"Leading dimension of {name} is {ld}, must be at least {Math.Max(1, cols)} (its column count).");
        long needed = rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;
        if (length < needed)
            throw new ArgumentException($"{name} has {length} elements, a {rows}x{cols} matrix with leading dimension {ld} needs {needed}.", name);
    }
}
