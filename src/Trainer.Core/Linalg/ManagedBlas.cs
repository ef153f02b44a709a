using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Trainer.Core.Linalg;

/// <summary>
/// GEMM in managed code for machines without OpenBLAS: packed panels and a register-blocked
/// micro-kernel, 512-bit where the CPU has AVX-512 (<see cref="GemmMicroKernel512"/>), else
/// <see cref="Vector{T}"/> (<see cref="GemmMicroKernel"/>); single-threaded. Both give every element
/// of C the same operations, so the bits do not depend on which one runs. A large product is cut
/// into blocks of columns of C, one per thread (<see cref="Threads"/>); that too leaves every
/// element's operations as they were, so the bits do not depend on the thread count either. Narrow
/// products (the output layer's: n, k or m up to 16) skip the packing (<see cref="GemmNarrow"/>), again
/// with the same operations per element.
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
    private const int MC = 96;   // a multiple of MR (6, or 4 for the 512-bit kernel)
    private const int NC = 512;  // a multiple of NR for float and double, both kernels

    // Whether the 512-bit kernel runs: where the CPU has AVX-512, unless a test asks for the other.
    private readonly bool _wide;
    // Whether narrow products take GemmNarrow's path (always, unless a test compares it with the blocked one).
    private readonly bool _narrow;
    private int _threads;

    public ManagedBlas() : this(Vector512.IsHardwareAccelerated, threads: 1) { }

    internal ManagedBlas(bool wide, int threads = 1, bool narrow = true)
    {
        _wide = wide;
        _narrow = narrow;
        SetThreads(threads);
    }

    public string Name => "managed";

    /// <summary>Threads one product may use, this one included (1: single-threaded, the default).</summary>
    public int Threads => Volatile.Read(ref _threads);

    /// <summary>Sets <see cref="Threads"/>, e.g. to the cores a silo has per worker it runs.</summary>
    public void SetThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Volatile.Write(ref _threads, threads);
    }

    /// <summary>Up to one k block the micro-kernels add their register sums to C once, with alpha 1 exactly (FMA(1, sum, c) = c + sum).</summary>
    public int SinglePassDepth => KC;

    /// <summary>Up to <see cref="SinglePassDepth"/>, for every shape and both element types.</summary>
    public bool AddsInOnePass<T>(Transpose transA, Transpose transB, int m, int n, int k) where T : unmanaged => k <= KC;

    /// <summary>Every element of C gets the same operations whatever path, tile or thread computes it, so a row's bits do not depend on m.</summary>
    public bool RowsAlike => true;

    public void Gemm(Transpose transA, Transpose transB, int m, int n, int k,
        double alpha, ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb,
        double beta, Span<double> c, int ldc)
        => Kernel(_wide, _narrow, Threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    public void Gemm(Transpose transA, Transpose transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
        => Kernel(_wide, _narrow, Threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    // Shapes: op(A) m x k, op(B) k x n, C m x n; all row-major.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel<T>(bool wide, bool narrow, int threads, Transpose transA, Transpose transB, int m, int n, int k,
        T alpha, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb,
        T beta, Span<T> c, int ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        GemmChecks.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        // A narrow product with beta 0 writes C itself (+0 + alpha·sum, the bits of adding to a cleared C):
        // at k = 10 clearing C first is a pass over C as long as a third of the multiply-adds.
        bool overwrite = beta == T.Zero && k > 0 && Narrow(narrow, wide, transB, m, n, k, alpha);
        // NOTE: beta == 0 must overwrite C, not multiply it: NaNs in an uninitialised C are ignored.
        for (int i = 0; i < m && !overwrite; i++)
        {
            var row = c.Slice(i * ldc, n);
            if (beta == T.Zero) row.Clear();
            else if (beta != T.One) TensorPrimitives.Multiply(row, beta, row);
        }
        if (m == 0 || n == 0 || k == 0 || alpha == T.Zero) return;
        int nr = wide ? GemmMicroKernel512.Columns<T>() : GemmMicroKernel.Columns<T>();
        int parts = (long)m * n * k < GemmThreads.ParallelWork ? 1 : Math.Min(threads, n / nr);
        if (parts <= 1)
        {
            Blocked(wide, narrow, overwrite, transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc);
            return;
        }
        // NOTE: by blocks of columns of C, each its own product op(A)·op(B)[:, cols]: an element of C
        // gets the same multiply-adds, over the same k blocks, whichever block and thread it falls in.
        // Columns, not rows: the forward products x·Wᵀ pack W (op(B)) at a cost comparable to their
        // multiply-adds at 32 samples, so each thread packs only its own columns of it.
        fixed (T* pa = a, pb = b, pc = c)
            GemmThreads.Run(new ColumnBlocks<T>(wide, narrow, overwrite, transA, transB, m, n, k, alpha, pa, a.Length, lda, pb, b.Length, ldb, pc, c.Length, ldc, parts, nr), parts);
    }

    /// <summary>C[:, cols] += alpha · op(A) · op(B)[:, cols] for one block of columns per part (pointers into pinned spans).</summary>
    private sealed unsafe class ColumnBlocks<T>(bool wide, bool narrow, bool overwrite, Transpose transA, Transpose transB, int m, int n, int k, T alpha,
        T* a, int aLength, int lda, T* b, int bLength, int ldb, T* c, int cLength, int ldc, int parts, int nr) : PartedWork(parts)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // Whole panels of nr columns per block; the last takes what is left.
        private readonly int _width = RoundUp((n + parts - 1) / parts, nr);

        protected override void RunPart(int part)
        {
            int j0 = part * _width, cols = Math.Min(_width, n - j0);
            if (cols <= 0) return;
            var bs = new ReadOnlySpan<T>(b, bLength);
            var cs = new Span<T>(c, cLength);
            Blocked(wide, narrow, overwrite, transA, transB, m, cols, k, alpha, new ReadOnlySpan<T>(a, aLength), lda,
                transB == Transpose.No ? bs[j0..] : bs[(j0 * ldb)..], ldb, cs[j0..], ldc);
        }
    }

    /// <summary>
    /// C += alpha · op(A) · op(B), blocked, on this thread (C already scaled by beta, unless <paramref name="overwrite"/>:
    /// then the product is narrow, and so is every block of its columns, and GemmNarrow writes C).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Blocked<T>(bool wide, bool narrow, bool overwrite, Transpose transA, Transpose transB, int m, int n, int k,
        T alpha, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Narrow(narrow, wide, transB, m, n, k, alpha))
        {
            GemmNarrow.Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc, overwrite);
            return;
        }
        Debug.Assert(!overwrite, "only the narrow path writes C without its beta pass");
        int mr = wide ? GemmMicroKernel512.Rows : GemmMicroKernel.Rows;
        int nr = wide ? GemmMicroKernel512.Columns<T>() : GemmMicroKernel.Columns<T>();
        int kcMax = Math.Min(k, KC);
        var packedA = Packing<T>.A(Math.Min(RoundUp(m, mr), MC) * kcMax);
        var packedB = Packing<T>.B(Math.Min(RoundUp(n, nr), NC) * kcMax);
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
                        {
                            var tile = c[((ic + ir) * ldc + jc + jr)..];
                            int rows = Math.Min(mr, mc - ir), cols = Math.Min(nr, nc - jr);
                            if (wide) GemmMicroKernel512.Run(kc, packedA.AsSpan(ir * kc), packedB.AsSpan(jr * kc), alpha, tile, ldc, rows, cols);
                            else GemmMicroKernel.Run(kc, packedA.AsSpan(ir * kc), packedB.AsSpan(jr * kc), alpha, tile, ldc, rows, cols);
                        }
                }
            }
        }
    }

    /// <summary>
    /// The packed panels, one pair per thread, grown as needed and kept: a GEMM (or a block of its columns) runs on one thread
    /// and calls nothing that could start another on it.
    /// </summary>
    /// <remarks>
    /// NOTE: not ArrayPool.Shared. When both panels fell in one of its size buckets, the second went
    /// through the pool's shared per-core stacks, where other threads' rentals took it: a step then
    /// allocated a fresh 16 KB panel now and then (SteadyStateAllocationTests, with other tests running).
    /// </remarks>
    private static class Packing<T>
    {
        [ThreadStatic] private static T[]? _a;
        [ThreadStatic] private static T[]? _b;

        public static T[] A(int length) => _a is { } a && a.Length >= length ? a : _a = new T[length];

        public static T[] B(int length) => _b is { } b && b.Length >= length ? b : _b = new T[length];
    }

    /// <summary>
    /// Copies op(A)[ic..ic+mc, pc..pc+kc] into panels of mr rows: panel q holds, for each p, the
    /// mr values op(A)[ic + q·mr + r, pc + p] (zero past row mc).
    /// </summary>
    private static void PackA<T>(Transpose transA, ReadOnlySpan<T> a, int lda, int ic, int mc, int pc, int kc, int mr, Span<T> dst)
        where T : unmanaged
    {
        for (int i0 = 0; i0 < mc; i0 += mr)
        {
            int rows = Math.Min(mr, mc - i0), i = ic + i0;
            var panel = dst.Slice(i0 * kc, kc * mr);
            if (transA == Transpose.No) GemmPacking.Transposed(a[(i * lda + pc)..], lda, rows, kc, mr, panel);   // row i of A, contiguous in p
            else GemmPacking.Contiguous(a[(pc * lda + i)..], lda, rows, kc, mr, panel);                          // column i of A, contiguous in i
        }
    }

    /// <summary>
    /// Copies op(B)[pc..pc+kc, jc..jc+nc] into panels of nr columns: panel q holds, for each p, the
    /// nr values op(B)[pc + p, jc + q·nr + j] (zero past column nc).
    /// </summary>
    private static void PackB<T>(Transpose transB, ReadOnlySpan<T> b, int ldb, int pc, int kc, int jc, int nc, int nr, Span<T> dst)
        where T : unmanaged
    {
        for (int j0 = 0; j0 < nc; j0 += nr)
        {
            int cols = Math.Min(nr, nc - j0), j = jc + j0;
            var panel = dst.Slice(j0 * kc, kc * nr);
            if (transB == Transpose.No) GemmPacking.Contiguous(b[(pc * ldb + j)..], ldb, cols, kc, nr, panel);   // row p of B, contiguous in j
            else GemmPacking.Transposed(b[(j * ldb + pc)..], ldb, cols, kc, nr, panel);                           // row j of B, contiguous in p
        }
    }

    /// <summary>
    /// Whether GemmNarrow takes the product. Alpha 1 only: its tiles differ from the blocked path's, whose
    /// edge tiles add alpha · sum to C unfused and whole tiles fused; with alpha 1 both round as C + sum.
    /// </summary>
    private static bool Narrow<T>(bool narrow, bool wide, Transpose transB, int m, int n, int k, T alpha)
        where T : IFloatingPointIeee754<T> =>
        narrow && alpha == T.One && GemmNarrow.Applies(wide, transB, m, n, k, KC);

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}
