using System.Runtime.CompilerServices;
using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace Trainer.Core.Linalg;

/// <summary>
/// GEMM in managed code for machines without OpenBLAS: packed panels and a register-blocked
/// <see cref="Vector{T}"/> micro-kernel (<see cref="GemmMicroKernel"/>), single-threaded.
/// </summary>
/// <remarks>
/// Hand-written because MathNet's managed provider is ~5x slower than OpenBLAS on the seed step
/// and no other maintained managed GEMM exists for net10.0.
/// The structure is the classic GotoBLAS/BLIS one: op(B) is copied in blocks of KC x NC into
/// panels NR columns wide, op(A) in blocks of MC x KC into panels MR rows high, both k-major, so
/// the micro-kernel reads both operands contiguously whatever the transposes, and the four
/// transpose cases differ only in how they are packed. Edges are zero-padded in the panels.
/// </remarks>
public sealed class ManagedBlas : IBlas
{
    // Block sizes in elements. KC x NR (B micro-panel) stays in L1, MC x KC (packed A) in L2.
    private const int KC = 256;
    private const int MC = 96;   // a multiple of MR
    private const int NC = 512;  // a multiple of NR for float and double

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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel<T>(Transpose transA, Transpose transB, int m, int n, int k,
        T alpha, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb,
        T beta, Span<T> c, int ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        GemmChecks.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        // NOTE: beta == 0 must overwrite C, not multiply it: NaNs in an uninitialised C are ignored.
        for (int i = 0; i < m; i++)
        {
            var row = c.Slice(i * ldc, n);
            if (beta == T.Zero) row.Clear();
            else if (beta != T.One) TensorPrimitives.Multiply(row, beta, row);
        }
        if (m == 0 || n == 0 || k == 0 || alpha == T.Zero) return;

        int mr = GemmMicroKernel.Rows, nr = GemmMicroKernel.Columns<T>();
        int kcMax = Math.Min(k, KC);
        var packedA = ArrayPool<T>.Shared.Rent(Math.Min(RoundUp(m, mr), MC) * kcMax);
        var packedB = ArrayPool<T>.Shared.Rent(Math.Min(RoundUp(n, nr), NC) * kcMax);
        try
        {
            for (int jc = 0; jc < n; jc += NC)
            {
                int nc = Math.Min(NC, n - jc);
                for (int pc = 0; pc < k; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    PackB(transB, b, ldb, pc, kc, jc, nc, nr, packedB);
                    for (int ic = 0; ic < m; ic += MC)
                    {
                        int mc = Math.Min(MC, m - ic);
                        PackA(transA, a, lda, ic, mc, pc, kc, mr, packedA);
                        for (int jr = 0; jr < nc; jr += nr)
                            for (int ir = 0; ir < mc; ir += mr)
                                GemmMicroKernel.Run(kc, packedA.AsSpan(ir * kc), packedB.AsSpan(jr * kc), alpha,
                                    c[((ic + ir) * ldc + jc + jr)..], ldc, Math.Min(mr, mc - ir), Math.Min(nr, nc - jr));
                    }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(packedA);
            ArrayPool<T>.Shared.Return(packedB);
        }
    }

    /// <summary>
    /// Copies op(A)[ic..ic+mc, pc..pc+kc] into panels of mr rows: panel q holds, for each p, the
    /// mr values op(A)[ic + q·mr + r, pc + p] (zero past row mc).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA<T>(Transpose transA, ReadOnlySpan<T> a, int lda, int ic, int mc, int pc, int kc, int mr, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i0 = 0; i0 < mc; i0 += mr)
        {
            var panel = dst.Slice(i0 * kc, kc * mr);
            int rows = Math.Min(mr, mc - i0);
            if (rows < mr) panel.Clear();
            for (int r = 0; r < rows; r++)
            {
                int i = ic + i0 + r;
                if (transA == Transpose.No)
                {
                    var src = a.Slice(i * lda + pc, kc);   // row i of A, contiguous in p
                    for (int p = 0; p < kc; p++) panel[p * mr + r] = src[p];
                }
                else
                    for (int p = 0; p < kc; p++) panel[p * mr + r] = a[(pc + p) * lda + i];
            }
        }
    }

    /// <summary>
    /// Copies op(B)[pc..pc+kc, jc..jc+nc] into panels of nr columns: panel q holds, for each p, the
    /// nr values op(B)[pc + p, jc + q·nr + j] (zero past column nc).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB<T>(Transpose transB, ReadOnlySpan<T> b, int ldb, int pc, int kc, int jc, int nc, int nr, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int j0 = 0; j0 < nc; j0 += nr)
        {
            var panel = dst.Slice(j0 * kc, kc * nr);
            int cols = Math.Min(nr, nc - j0);
            if (cols < nr) panel.Clear();
            if (transB == Transpose.No)
                for (int p = 0; p < kc; p++)   // row p of B, contiguous in j
                    b.Slice((pc + p) * ldb + jc + j0, cols).CopyTo(panel.Slice(p * nr, cols));
            else
                for (int j = 0; j < cols; j++)
                {
                    var src = b.Slice((jc + j0 + j) * ldb + pc, kc);   // row j of B, contiguous in p
                    for (int p = 0; p < kc; p++) panel[p * nr + j] = src[p];
                }
        }
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}
