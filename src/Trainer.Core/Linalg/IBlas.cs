using System.Runtime.InteropServices;

namespace Trainer.Core.Linalg;

/// <summary>
/// The dense kernels the core needs from a BLAS. All matrices are ROW-MAJOR with an explicit
/// leading dimension (the stride between rows), as in <c>cblas_dgemm(CblasRowMajor, ...)</c>.
/// </summary>
/// <remarks>
/// Shapes: op(A) is (m x k), op(B) is (k x n), C is (m x n).
/// C = alpha * op(A) * op(B) + beta * C. When beta is 0, C is overwritten (NaNs in C are ignored),
/// matching the reference BLAS.
/// </remarks>
public interface IBlas
{
    /// <summary>A short name for logs: "openblas" or "managed".</summary>
    string Name { get; }

    /// <summary>
    /// Whether, for this shape and element type, beta 1 and alpha 1 round exactly as
    /// C + (op(A)·op(B) computed alone with beta 0), whatever the values: the product is formed in one
    /// pass over k and added to C once. Callers that need those bits may then accumulate in place
    /// instead of through a scratch matrix. false: not promised.
    /// </summary>
    bool AddsInOnePass<T>(Transpose transA, Transpose transB, int m, int n, int k) where T : unmanaged => false;

    /// <summary>
    /// Whether a row of C gets the same bits whatever other rows are computed with it (m, and the row's place
    /// among them): a product over a block of samples then gives each sample the bits of a product over any
    /// part of the block holding it. false: never promised (a BLAS may choose its kernels by size).
    /// </summary>
    bool RowsAlike => false;

    void Gemm(Transpose transA, Transpose transB, int m, int n, int k,
        double alpha, ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb,
        double beta, Span<double> c, int ldc);

    void Gemm(Transpose transA, Transpose transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc);
}

/// <summary>The BLAS overload for a generic element type T (double or float).</summary>
public static class BlasExtensions
{
    /// <summary>C = op(A)·op(B) with alpha 1, beta 0; the typeof test is folded away by the JIT.</summary>
    public static void Gemm<T>(this IBlas blas, Transpose ta, Transpose tb, int m, int n, int k,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc) where T : unmanaged
        => Gemm(blas, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, beta: 0);

    /// <summary>C = C + op(A)·op(B) (alpha 1, beta 1); see <see cref="IBlas.AddsInOnePass{T}"/> for how it rounds.</summary>
    public static void GemmAdd<T>(this IBlas blas, Transpose ta, Transpose tb, int m, int n, int k,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc) where T : unmanaged
        => Gemm(blas, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, beta: 1);

    private static void Gemm<T>(IBlas blas, Transpose ta, Transpose tb, int m, int n, int k,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, int beta) where T : unmanaged
    {
        if (typeof(T) == typeof(double))
            blas.Gemm(ta, tb, m, n, k, 1.0, MemoryMarshal.Cast<T, double>(a), lda,
                MemoryMarshal.Cast<T, double>(b), ldb, beta, MemoryMarshal.Cast<T, double>(c), ldc);
        else if (typeof(T) == typeof(float))
            blas.Gemm(ta, tb, m, n, k, 1.0f, MemoryMarshal.Cast<T, float>(a), lda,
                MemoryMarshal.Cast<T, float>(b), ldb, beta, MemoryMarshal.Cast<T, float>(c), ldc);
        else
            throw new NotSupportedException($"GEMM of {typeof(T).Name}: only double and float have kernels.");
    }
}
