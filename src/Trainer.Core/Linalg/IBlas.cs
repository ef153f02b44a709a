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

    void Gemm(Transpose transA, Transpose transB, int m, int n, int k,
        double alpha, ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb,
        double beta, Span<double> c, int ldc);

    void Gemm(Transpose transA, Transpose transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc);
}
