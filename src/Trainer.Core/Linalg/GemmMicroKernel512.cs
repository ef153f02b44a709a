using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Trainer.Core.Linalg;

/// <summary>
/// <see cref="GemmMicroKernel"/> on 512-bit vectors, for CPUs with AVX-512: C[0..Rows, 0..Columns]
/// += alpha · Ap · Bp for one packed A micro-panel and one packed B micro-panel.
/// </summary>
/// <remarks>
/// Legend: V = Vector512&lt;T&gt;.Count (8 doubles, 16 floats), MR = <see cref="Rows"/> = 4, NR = 2V.
/// Each element of C gets the same fused multiply-adds, in the same order of p, as in the 256-bit
/// kernel (only the tile around it is larger), so the bits do not change with the kernel.
/// [SkipLocalsInit] for the reason given on <see cref="GemmMicroKernel"/>.
/// NOTE: 4 rows, not the 256-bit kernel's 6: with 12 zmm accumulators the JIT (.NET 10) kept them in
/// stack slots and stored each after every FMA (JitDisasm), 18-21 GFLOP/s; with 8 they stay in
/// registers: 73 GFLOP/s per core on this VM's Xeon against 43-45 for the 256-bit kernel (measured
/// alone, kc = 256, float64).
/// </remarks>
internal static class GemmMicroKernel512
{
    public const int Rows = 4;

    public static int Columns<T>() => 2 * Vector512<T>.Count;

    /// <summary>rows x cols is the valid part of the tile (smaller at the edges of C).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    public static void Run<T>(int kc, ReadOnlySpan<T> ap, ReadOnlySpan<T> bp, T alpha, Span<T> c, int ldc, int rows, int cols)
        where T : unmanaged, INumberBase<T>
    {
        int w = Vector512<T>.Count;
        Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<T> c20 = default, c21 = default, c30 = default, c31 = default;
        ref T a = ref MemoryMarshal.GetReference(ap);
        ref T b = ref MemoryMarshal.GetReference(bp);
        // The panels hold kc·Rows and kc·2V values (checked once here, not in the loop).
        if (ap.Length < kc * Rows || bp.Length < kc * 2 * w) throw new ArgumentException("Packed panel too short.");
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.LoadUnsafe(ref b);
            var b1 = Vector512.LoadUnsafe(ref b, (nuint)w);
            var a0 = Vector512.Create(a);
            c00 = MultiplyAdd(a0, b0, c00); c01 = MultiplyAdd(a0, b1, c01);
            var a1 = Vector512.Create(Unsafe.Add(ref a, 1));
            c10 = MultiplyAdd(a1, b0, c10); c11 = MultiplyAdd(a1, b1, c11);
            var a2 = Vector512.Create(Unsafe.Add(ref a, 2));
            c20 = MultiplyAdd(a2, b0, c20); c21 = MultiplyAdd(a2, b1, c21);
            var a3 = Vector512.Create(Unsafe.Add(ref a, 3));
            c30 = MultiplyAdd(a3, b0, c30); c31 = MultiplyAdd(a3, b1, c31);
            a = ref Unsafe.Add(ref a, Rows);
            b = ref Unsafe.Add(ref b, 2 * w);
        }

        var scale = Vector512.Create(alpha);
        if (rows == Rows && cols == 2 * w)
        {
            ref T c0 = ref MemoryMarshal.GetReference(c[..((Rows - 1) * ldc + 2 * w)]);
            AddRow(ref c0, scale, c00, c01);
            AddRow(ref Unsafe.Add(ref c0, ldc), scale, c10, c11);
            AddRow(ref Unsafe.Add(ref c0, 2 * ldc), scale, c20, c21);
            AddRow(ref Unsafe.Add(ref c0, 3 * ldc), scale, c30, c31);
            return;
        }
        // Edge tile: spill to the stack, add the valid rows x cols part.
        Span<T> tile = stackalloc T[Rows * 2 * w];
        ref T t = ref MemoryMarshal.GetReference(tile);
        Spill(ref t, c00, c01);
        Spill(ref Unsafe.Add(ref t, 2 * w), c10, c11);
        Spill(ref Unsafe.Add(ref t, 4 * w), c20, c21);
        Spill(ref Unsafe.Add(ref t, 6 * w), c30, c31);
        GemmMicroKernel.AddEdge(tile, 2 * w, alpha, c, ldc, rows, cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow<T>(ref T row, Vector512<T> alpha, Vector512<T> lo, Vector512<T> hi)
        where T : unmanaged, INumberBase<T>
    {
        int w = Vector512<T>.Count;
        Vector512.StoreUnsafe(MultiplyAdd(alpha, lo, Vector512.LoadUnsafe(ref row)), ref row);
        Vector512.StoreUnsafe(MultiplyAdd(alpha, hi, Vector512.LoadUnsafe(ref row, (nuint)w)), ref row, (nuint)w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Spill<T>(ref T row, Vector512<T> lo, Vector512<T> hi)
        where T : unmanaged, INumberBase<T>
    {
        Vector512.StoreUnsafe(lo, ref row);
        Vector512.StoreUnsafe(hi, ref row, (nuint)Vector512<T>.Count);
    }

    /// <summary>a · b + c, fused (AVX-512 always has FMA; T is double or float).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> MultiplyAdd<T>(Vector512<T> a, Vector512<T> b, Vector512<T> c)
        where T : unmanaged, INumberBase<T>
    {
        if (typeof(T) == typeof(double))
            return Vector512.FusedMultiplyAdd(a.As<T, double>(), b.As<T, double>(), c.As<T, double>()).As<double, T>();
        if (typeof(T) == typeof(float))
            return Vector512.FusedMultiplyAdd(a.As<T, float>(), b.As<T, float>(), c.As<T, float>()).As<float, T>();
        throw new NotSupportedException($"GEMM on {typeof(T).Name}");
    }
}
