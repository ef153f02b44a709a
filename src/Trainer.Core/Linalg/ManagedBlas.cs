using System.Numerics;
using System.Numerics.Tensors;

namespace Trainer.Core.Linalg;

/// <summary>
/// GEMM in managed code, vectorized with System.Numerics.Tensors, for machines without OpenBLAS.
/// </summary>
/// <remarks>
/// Written here because MathNet's managed provider is ~5x slower than OpenBLAS on the seed step
/// and no other maintained managed GEMM exists for net10.0. Each case is arranged so that its
/// inner loop runs along contiguous rows: an axpy (row of C += scalar * row of B) or a dot
/// product of two rows, both of which TensorPrimitives vectorizes.
/// </remarks>
public sealed class ManagedBlas : IBlas
{
    public string Name => "managed";

    public void Gemm(Transpose transA, Transpose transB, int m, int n, int k,
        double alpha, ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb,
        double beta, Span<double> c, int ldc)
        => Kernel(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    public void Gemm(Transpose transA, Transpose transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
        => Kernel(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    // Shapes: op(A) m x k, op(B) k x n, C m x n; all row-major.
    private static void Kernel<T>(Transpose transA, Transpose transB, int m, int n, int k,
        T alpha, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb,
        T beta, Span<T> c, int ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        GemmChecks.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        for (int i = 0; i < m; i++)
        {
            var row = c.Slice(i * ldc, n);
            if (beta == T.Zero) row.Clear();
            else if (beta != T.One) TensorPrimitives.Multiply(row, beta, row);
        }
        if (k == 0 || alpha == T.Zero) return;

        switch (transA, transB)
        {
            case (Transpose.No, Transpose.No):
                // C[i,:] += alpha * A[i,p] * B[p,:]
                for (int i = 0; i < m; i++)
                {
                    var row = c.Slice(i * ldc, n);
                    for (int p = 0; p < k; p++)
                        Axpy(alpha * a[i * lda + p], b.Slice(p * ldb, n), row);
                }
                break;
            case (Transpose.No, Transpose.Yes):
                // C[i,j] += alpha * dot(A[i,:], B[j,:]): both rows contiguous.
                for (int i = 0; i < m; i++)
                {
                    var ai = a.Slice(i * lda, k);
                    for (int j = 0; j < n; j++)
                        c[i * ldc + j] += alpha * TensorPrimitives.Dot(ai, b.Slice(j * ldb, k));
                }
                break;
            case (Transpose.Yes, Transpose.No):
                // C[i,:] += alpha * A[p,i] * B[p,:], p outermost so B's row stays in cache.
                for (int p = 0; p < k; p++)
                {
                    var bp = b.Slice(p * ldb, n);
                    for (int i = 0; i < m; i++)
                        Axpy(alpha * a[p * lda + i], bp, c.Slice(i * ldc, n));
                }
                break;
            default:
                // C[i,j] += alpha * sum_p A[p,i] * B[j,p]; rare, so kept simple.
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        T sum = T.Zero;
                        for (int p = 0; p < k; p++) sum += a[p * lda + i] * b[j * ldb + p];
                        c[i * ldc + j] += alpha * sum;
                    }
                break;
        }
    }

    private static void Axpy<T>(T scale, ReadOnlySpan<T> x, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (scale == T.Zero) return;
        TensorPrimitives.MultiplyAdd(x, scale, y, y);
    }
}
