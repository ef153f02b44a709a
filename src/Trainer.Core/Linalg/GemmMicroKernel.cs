using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using X86Fma = System.Runtime.Intrinsics.X86.Fma;

namespace Trainer.Core.Linalg;

/// <summary>
/// The register-blocked inner kernel of <see cref="ManagedBlas"/>: C[0..Rows, 0..Columns] +=
/// alpha · Ap · Bp for one packed A micro-panel and one packed B micro-panel.
/// </summary>
/// <remarks>
/// Legend: W = Vector&lt;T&gt;.Count, MR = <see cref="Rows"/> = 6, NR = 2W columns.
/// Ap is (kc, MR) and Bp is (kc, NR), both k-major and contiguous; C is row-major with stride ldc.
/// The 6 x 2W block of C lives in 12 vector registers for the whole k loop; each step loads two
/// vectors of B, broadcasts six values of A and issues twelve fused multiply-adds. 12 + 2 + 1
/// registers fit the 16 of AVX2 (and NEON's 32).
/// NOTE: [SkipLocalsInit] keeps the edge tile's stackalloc from calling the runtime's zeroing helper.
/// A call there clobbers every vector register (all are caller-saved on x64 Unix), so the accumulators
/// needed stack homes, and without PGO (the trainer runs with TieredPGO off) the JIT stored
/// each one to its home after every FMA of the k loop: 3x slower in the trainer than in a benchmark
/// with tiering on (JitDisasm of both).
/// </remarks>
internal static class GemmMicroKernel
{
    public const int Rows = 6;

    public static int Columns<T>() => 2 * Vector<T>.Count;

    /// <summary>rows x cols is the valid part of the tile (smaller at the edges of C).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    public static void Run<T>(int kc, ReadOnlySpan<T> ap, ReadOnlySpan<T> bp, T alpha, Span<T> c, int ldc, int rows, int cols)
        where T : unmanaged, INumberBase<T>
    {
        int w = Vector<T>.Count;
        Vector<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector<T> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        ref T a = ref MemoryMarshal.GetReference(ap);
        ref T b = ref MemoryMarshal.GetReference(bp);
        // The panels hold kc·Rows and kc·2W values (checked once here, not in the loop).
        if (ap.Length < kc * Rows || bp.Length < kc * 2 * w) throw new ArgumentException("Packed panel too short.");
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector.LoadUnsafe(ref b);
            var b1 = Vector.LoadUnsafe(ref b, (nuint)w);
            var a0 = new Vector<T>(a);
            c00 = MultiplyAdd(a0, b0, c00); c01 = MultiplyAdd(a0, b1, c01);
            var a1 = new Vector<T>(Unsafe.Add(ref a, 1));
            c10 = MultiplyAdd(a1, b0, c10); c11 = MultiplyAdd(a1, b1, c11);
            var a2 = new Vector<T>(Unsafe.Add(ref a, 2));
            c20 = MultiplyAdd(a2, b0, c20); c21 = MultiplyAdd(a2, b1, c21);
            var a3 = new Vector<T>(Unsafe.Add(ref a, 3));
            c30 = MultiplyAdd(a3, b0, c30); c31 = MultiplyAdd(a3, b1, c31);
            var a4 = new Vector<T>(Unsafe.Add(ref a, 4));
            c40 = MultiplyAdd(a4, b0, c40); c41 = MultiplyAdd(a4, b1, c41);
            var a5 = new Vector<T>(Unsafe.Add(ref a, 5));
            c50 = MultiplyAdd(a5, b0, c50); c51 = MultiplyAdd(a5, b1, c51);
            a = ref Unsafe.Add(ref a, Rows);
            b = ref Unsafe.Add(ref b, 2 * w);
        }

        if (rows == Rows && cols == 2 * w)
        {
            AddTile(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, alpha, c, ldc, overwrite: false);
            return;
        }
        // Edge tile: spill to the stack, add the valid rows x cols part.
        Span<T> tile = stackalloc T[Rows * 2 * w];
        SpillTile(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, tile);
        AddEdge(tile, 2 * w, alpha, c, ldc, rows, cols);
    }

    /// <summary>
    /// C[0..Rows, 0..2W] += alpha · the accumulators (a whole tile), fused: FMA(alpha, sum, c); with
    /// <paramref name="overwrite"/>, FMA(alpha, sum, +0) without reading C, the same bits as on a C cleared to +0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void AddTile<T>(Vector<T> c00, Vector<T> c01, Vector<T> c10, Vector<T> c11, Vector<T> c20, Vector<T> c21,
        Vector<T> c30, Vector<T> c31, Vector<T> c40, Vector<T> c41, Vector<T> c50, Vector<T> c51, T alpha, Span<T> c, int ldc, bool overwrite)
        where T : unmanaged, INumberBase<T>
    {
        var scale = new Vector<T>(alpha);
        ref T c0 = ref MemoryMarshal.GetReference(c[..((Rows - 1) * ldc + 2 * Vector<T>.Count)]);
        AddRow(ref c0, scale, c00, c01, overwrite);
        AddRow(ref Unsafe.Add(ref c0, ldc), scale, c10, c11, overwrite);
        AddRow(ref Unsafe.Add(ref c0, 2 * ldc), scale, c20, c21, overwrite);
        AddRow(ref Unsafe.Add(ref c0, 3 * ldc), scale, c30, c31, overwrite);
        AddRow(ref Unsafe.Add(ref c0, 4 * ldc), scale, c40, c41, overwrite);
        AddRow(ref Unsafe.Add(ref c0, 5 * ldc), scale, c50, c51, overwrite);
    }

    /// <summary>The accumulators into <paramref name="tile"/>, row-major, 2W wide (an edge tile, for <see cref="AddEdge"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void SpillTile<T>(Vector<T> c00, Vector<T> c01, Vector<T> c10, Vector<T> c11, Vector<T> c20, Vector<T> c21,
        Vector<T> c30, Vector<T> c31, Vector<T> c40, Vector<T> c41, Vector<T> c50, Vector<T> c51, Span<T> tile)
        where T : unmanaged, INumberBase<T>
    {
        int w = Vector<T>.Count;
        ref T t = ref MemoryMarshal.GetReference(tile[..(Rows * 2 * w)]);
        Spill(ref t, c00, c01);
        Spill(ref Unsafe.Add(ref t, 2 * w), c10, c11);
        Spill(ref Unsafe.Add(ref t, 4 * w), c20, c21);
        Spill(ref Unsafe.Add(ref t, 6 * w), c30, c31);
        Spill(ref Unsafe.Add(ref t, 8 * w), c40, c41);
        Spill(ref Unsafe.Add(ref t, 10 * w), c50, c51);
    }

    /// <summary>
    /// C[0..rows, 0..cols] += alpha · tile (row-major, <paramref name="width"/> wide): an edge tile's valid part, in
    /// every kernel; with <paramref name="overwrite"/>, +0 + alpha · tile without reading C (as on a C cleared to +0).
    /// </summary>
    /// <remarks>
    /// Whole vectors of a row first, then element by element: the same operations (a product, rounded,
    /// then a sum, not fused) either way. At the output layer's shapes (n = 10) most tiles are edge tiles.
    /// </remarks>
    internal static void AddEdge<T>(ReadOnlySpan<T> tile, int width, T alpha, Span<T> c, int ldc, int rows, int cols, bool overwrite = false)
        where T : unmanaged, INumberBase<T>
    {
        int w = Vector<T>.Count;
        var scale = new Vector<T>(alpha);
        for (int r = 0; r < rows; r++)
        {
            var cr = c.Slice(r * ldc, cols);
            var tr = tile.Slice(r * width, cols);
            int j = 0;
            for (; j + w <= cols; j += w)
            {
                var sum = overwrite ? Vector<T>.Zero : Vector.LoadUnsafe(ref cr[j]);
                (sum + scale * Vector.LoadUnsafe(ref MemoryMarshal.GetReference(tr[j..]))).StoreUnsafe(ref cr[j]);
            }
            if (Vector128.IsHardwareAccelerated && j + Vector128<T>.Count <= cols)
            {
                var sum = overwrite ? Vector128<T>.Zero : Vector128.LoadUnsafe(ref cr[j]);
                (sum + Vector128.Create(alpha) * Vector128.LoadUnsafe(ref MemoryMarshal.GetReference(tr[j..]))).StoreUnsafe(ref cr[j]);
                j += Vector128<T>.Count;
            }
            for (; j < cols; j++) cr[j] = (overwrite ? T.Zero : cr[j]) + alpha * tr[j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void AddRow<T>(ref T row, Vector<T> alpha, Vector<T> lo, Vector<T> hi, bool overwrite)
        where T : unmanaged, INumberBase<T>
    {
        int w = Vector<T>.Count;
        Vector.StoreUnsafe(MultiplyAdd(alpha, lo, overwrite ? Vector<T>.Zero : Vector.LoadUnsafe(ref row)), ref row);
        Vector.StoreUnsafe(MultiplyAdd(alpha, hi, overwrite ? Vector<T>.Zero : Vector.LoadUnsafe(ref row, (nuint)w)), ref row, (nuint)w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Spill<T>(ref T row, Vector<T> lo, Vector<T> hi)
        where T : unmanaged, INumberBase<T>
    {
        Vector.StoreUnsafe(lo, ref row);
        Vector.StoreUnsafe(hi, ref row, (nuint)Vector<T>.Count);
    }

    /// <summary>a · b + c, fused where the hardware has it (T is double or float).</summary>
    /// <remarks>
    /// NOTE: without FMA hardware Vector.FusedMultiplyAdd is emulated in software (correctly rounded,
    /// far slower), hence the test. It must be the JIT-constant IsSupported itself: a static readonly
    /// copy is not folded when the kernel is compiled before its class is initialised, and the
    /// branches it leaves in the loop push the accumulators out of registers (measured: 4x slower).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector<T> MultiplyAdd<T>(Vector<T> a, Vector<T> b, Vector<T> c)
        where T : unmanaged, INumberBase<T>
    {
        if (X86Fma.IsSupported || AdvSimd.IsSupported)
        {
            if (typeof(T) == typeof(double))
                return Vector.FusedMultiplyAdd(a.As<T, double>(), b.As<T, double>(), c.As<T, double>()).As<double, T>();
            if (typeof(T) == typeof(float))
                return Vector.FusedMultiplyAdd(a.As<T, float>(), b.As<T, float>(), c.As<T, float>()).As<float, T>();
        }
        return a * b + c;
    }
}
