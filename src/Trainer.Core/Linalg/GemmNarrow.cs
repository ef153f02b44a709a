using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Trainer.Core.Linalg;

/// <summary>
/// <see cref="ManagedBlas"/>'s path for narrow products (the output layer's: n, k or m up to
/// <see cref="Width"/>, k within one k block): no packing of op(A), and op(B) read in place where its
/// rows are contiguous. Every element of C gets the same chain of fused multiply-adds over p from zero,
/// added to C once, as in the blocked path, so the bits are the same (ManagedBlas sends it products
/// with alpha 1 only, where adding alpha · sum fused, as whole tiles do, or not, as edge tiles do, rounds
/// alike: its tiles are not the blocked path's).
/// </summary>
/// <remarks>
/// Legend: W = Vector&lt;T&gt;.Count, MR = <see cref="Rows"/> = 6 (or 4), NR = 2W (or W); op(A) m x k, op(B) k x n, C m x n.
/// NOTE: why not the blocked path. At these sizes the packing is a large share of the work: in a·W2ᵀ
/// (32 x 10 x 100) each packed value of a is used by only 10 columns, and in δ·W2 (k = 10) each packed
/// value of W2 by 32 rows over a k loop of 10 steps. Here op(A) is broadcast from where it lies (row i
/// at stride lda, or column i of Aᵀ at stride 1) and op(B) = B is loaded from its own rows; only op(B)
/// = Bᵀ, whose rows are not contiguous in j, is transposed, and only when n is narrow (W2 of 10 rows).
/// </remarks>
internal static class GemmNarrow
{
    public const int Rows = GemmMicroKernel.Rows;   // the tile whose accumulators AddTile stores

    /// <summary>The largest dimension that makes a product narrow.</summary>
    public const int Width = 16;

    /// <summary>
    /// Whether this path takes the product: k at most <paramref name="kc"/> (one k block, so C gets one
    /// addition) and a narrow m, n or k. With <paramref name="wide"/> (the 512-bit kernel), not where only
    /// k is narrow: there the blocked path's tiles are whole at the trainer's shapes (32 x 128 at k = 10)
    /// and its 512-bit multiply-adds do twice the work of this path's.
    /// </summary>
    public static bool Applies(bool wide, Transpose transB, int m, int n, int k, int kc) =>
        k <= kc && (transB == Transpose.No ? Math.Min(m, n) <= Width || (!wide && k <= Width) : n <= Width);

    /// <summary>
    /// C += alpha · op(A) · op(B) (C already scaled by beta), on this thread; with <paramref name="overwrite"/>,
    /// C = +0 + alpha · op(A) · op(B) without reading C (beta 0: the bits of adding to a C cleared to +0, one pass fewer over C).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<T>(Transpose transA, Transpose transB, int m, int n, int k,
        T alpha, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, bool overwrite)
        where T : unmanaged, INumberBase<T>
    {
        int nr = 2 * Vector<T>.Count;
        // op(A)[i, p] = a[i·aRow + p·aDepth]
        int aRow = transA == Transpose.No ? lda : 1, aDepth = transA == Transpose.No ? 1 : lda;
        int width = (n + nr - 1) / nr * nr;
        var buffer = Buffers<T>.Get(k * (transB == Transpose.No ? nr : width));
        ReadOnlySpan<T> rowsB = b;
        int ldRows = ldb, whole = n / nr * nr;
        if (transB == Transpose.Yes)
        {
            // op(B)[p, j] = b[j·ldb + p]: k x width, zero past column n, so every strip has NR columns.
            GemmPacking.Transposed(b, ldb, n, k, width, buffer);
            rowsB = buffer;
            ldRows = whole = width;
        }
        for (int j0 = 0; j0 < n; j0 += nr)
        {
            int cols = Math.Min(nr, n - j0);
            var strip = rowsB[j0..];
            int ld = ldRows;
            if (j0 >= whole)
            {
                // The last strip of B in place would be read past its rows' ends: copied, zero-padded to NR.
                GemmPacking.Contiguous(strip, ldRows, cols, k, nr, buffer);
                strip = buffer;
                ld = nr;
            }
            // A last strip of at most W columns takes one vector of B a step: half the multiply-adds of two.
            if (cols * 2 <= nr) Strips<T, No>(k, a, aRow, aDepth, m, strip, ld, alpha, c[j0..], ldc, cols, overwrite);
            else Strips<T, Yes>(k, a, aRow, aDepth, m, strip, ld, alpha, c[j0..], ldc, cols, overwrite);
        }
    }

    /// <summary>
    /// One strip of B against all m rows: tiles of 6 rows, and of 4 where that wastes fewer rows
    /// (m = 32 as 6+6+6+6+4+4, m = 10 as 6+4; a tile of 6 for 2 rows does the work of 6).
    /// </summary>
    private static void Strips<T, TTwo>(int k, ReadOnlySpan<T> a, int aRow, int aDepth, int m,
        ReadOnlySpan<T> b, int ldb, T alpha, Span<T> c, int ldc, int cols, bool overwrite)
        where T : unmanaged, INumberBase<T>
        where TTwo : struct, IFlag
    {
        int r = m % Rows;
        int byFour = r == 0 || r == 5 ? 0 : r <= 2 && m > Rows ? r + Rows : r;
        if (m > byFour) Strip<T, TTwo, Yes>(k, a, aRow, aDepth, 0, m - byFour, b, ldb, alpha, c, ldc, cols, overwrite);
        if (byFour > 0) Strip<T, TTwo, No>(k, a, aRow, aDepth, m - byFour, m, b, ldb, alpha, c, ldc, cols, overwrite);
    }

    /// <summary>
    /// C[i0..i1, 0..cols] += alpha · op(A)[i0..i1, 0..k] · B[0..k, 0..NR] (0..W unless <typeparamref name="TTwo"/>),
    /// B row-major with stride ldb, in tiles of 6 rows (4 unless <typeparamref name="TSix"/>). In the last tile,
    /// rows past i1 repeat the last one and are not stored.
    /// </summary>
    /// <remarks>
    /// One call per strip of B, not per tile: with k = 10 a tile is only 10 steps of 12 FMAs, and a
    /// call with its span checks per tile was a large part of it. [SkipLocalsInit] for the reason given
    /// on <see cref="GemmMicroKernel"/>.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    private static void Strip<T, TTwo, TSix>(int k, ReadOnlySpan<T> a, int aRow, int aDepth, int i0, int i1,
        ReadOnlySpan<T> b, int ldb, T alpha, Span<T> c, int ldc, int cols, bool overwrite)
        where T : unmanaged, INumberBase<T>
        where TTwo : struct, IFlag
        where TSix : struct, IFlag
    {
        int w = Vector<T>.Count;
        Span<T> edge = stackalloc T[Rows * 2 * w];
        // Checked once here, not in the loops: the last row and depth of A, the last row of B's strip.
        ref T a00 = ref MemoryMarshal.GetReference(a[..((i1 - 1) * aRow + (k - 1) * aDepth + 1)]);
        ref T b00 = ref MemoryMarshal.GetReference(b[..((k - 1) * ldb + (TTwo.Value ? 2 : 1) * w)]);
        int height = TSix.Value ? 6 : 4;
        for (; i0 < i1; i0 += height)
        {
            int last = Math.Min(height, i1 - i0) - 1;
            ref T a0 = ref Unsafe.Add(ref a00, i0 * aRow);
            ref T a1 = ref Unsafe.Add(ref a0, Math.Min(1, last) * aRow);
            ref T a2 = ref Unsafe.Add(ref a0, Math.Min(2, last) * aRow);
            ref T a3 = ref Unsafe.Add(ref a0, Math.Min(3, last) * aRow);
            ref T a4 = ref Unsafe.Add(ref a0, Math.Min(4, last) * aRow);
            ref T a5 = ref Unsafe.Add(ref a0, Math.Min(5, last) * aRow);
            ref T bp = ref b00;
            Vector<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            Vector<T> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            nint q = 0;
            for (int p = 0; p < k; p++, q += aDepth)
            {
                var b0 = Vector.LoadUnsafe(ref bp);
                var b1 = TTwo.Value ? Vector.LoadUnsafe(ref bp, (nuint)w) : default;
                var x = new Vector<T>(Unsafe.Add(ref a0, q));
                c00 = GemmMicroKernel.MultiplyAdd(x, b0, c00);
                if (TTwo.Value) c01 = GemmMicroKernel.MultiplyAdd(x, b1, c01);
                x = new Vector<T>(Unsafe.Add(ref a1, q));
                c10 = GemmMicroKernel.MultiplyAdd(x, b0, c10);
                if (TTwo.Value) c11 = GemmMicroKernel.MultiplyAdd(x, b1, c11);
                x = new Vector<T>(Unsafe.Add(ref a2, q));
                c20 = GemmMicroKernel.MultiplyAdd(x, b0, c20);
                if (TTwo.Value) c21 = GemmMicroKernel.MultiplyAdd(x, b1, c21);
                x = new Vector<T>(Unsafe.Add(ref a3, q));
                c30 = GemmMicroKernel.MultiplyAdd(x, b0, c30);
                if (TTwo.Value) c31 = GemmMicroKernel.MultiplyAdd(x, b1, c31);
                if (TSix.Value)
                {
                    x = new Vector<T>(Unsafe.Add(ref a4, q));
                    c40 = GemmMicroKernel.MultiplyAdd(x, b0, c40);
                    if (TTwo.Value) c41 = GemmMicroKernel.MultiplyAdd(x, b1, c41);
                    x = new Vector<T>(Unsafe.Add(ref a5, q));
                    c50 = GemmMicroKernel.MultiplyAdd(x, b0, c50);
                    if (TTwo.Value) c51 = GemmMicroKernel.MultiplyAdd(x, b1, c51);
                }
                bp = ref Unsafe.Add(ref bp, ldb);
            }
            var tile = c[(i0 * ldc)..];
            if (TTwo.Value && TSix.Value && last == Rows - 1 && cols == 2 * w)
                GemmMicroKernel.AddTile(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, alpha, tile, ldc, overwrite);
            else if (TTwo.Value && !TSix.Value && last == 3 && cols == 2 * w)
            {
                var scale = new Vector<T>(alpha);
                ref T c0 = ref MemoryMarshal.GetReference(tile[..(3 * ldc + 2 * w)]);
                GemmMicroKernel.AddRow(ref c0, scale, c00, c01, overwrite);
                GemmMicroKernel.AddRow(ref Unsafe.Add(ref c0, ldc), scale, c10, c11, overwrite);
                GemmMicroKernel.AddRow(ref Unsafe.Add(ref c0, 2 * ldc), scale, c20, c21, overwrite);
                GemmMicroKernel.AddRow(ref Unsafe.Add(ref c0, 3 * ldc), scale, c30, c31, overwrite);
            }
            else
            {
                GemmMicroKernel.SpillTile(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, edge);
                GemmMicroKernel.AddEdge(edge, 2 * w, alpha, tile, ldc, last + 1, cols, overwrite);
            }
        }
    }

    /// <summary>A yes/no as a type argument: the JIT compiles a generic method once per value, without the other's code.</summary>
    private interface IFlag
    {
        static abstract bool Value { get; }
    }

    private readonly struct Yes : IFlag
    {
        public static bool Value => true;
    }

    private readonly struct No : IFlag
    {
        public static bool Value => false;
    }

    /// <summary>One scratch array per thread and element type, grown as needed and kept (see ManagedBlas's Packing).</summary>
    private static class Buffers<T>
    {
        [ThreadStatic] private static T[]? _buffer;

        public static T[] Get(int length) => _buffer is { } b && b.Length >= length ? b : _buffer = new T[length];
    }
}
