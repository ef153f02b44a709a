using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Trainer.Core.Linalg;

/// <summary>
/// Copies blocks of op(A) and op(B) into the k-major panels <see cref="ManagedBlas"/>'s micro-kernels
/// read: a panel w wide holds, for each p, the w values of its rows (A) or columns (B) at depth p,
/// zero past the matrix's edge. Copying only: the arithmetic, and so the bits, do not depend on it.
/// </summary>
/// <remarks>
/// Two cases cover the four transposes. Where the panel's w values lie side by side in the source
/// (op(A) = Aᵀ, op(B) = B) each depth is one contiguous copy. Where they lie in w different source
/// rows, contiguous in p (op(A) = A, op(B) = Bᵀ: the forward pass's x·Wᵀ), the block is transposed,
/// 4 x 4 at a time in registers. NOTE: this matters at the trainer's shapes: a forward product of 32
/// samples uses each packed value of W only 32 times, so an element-by-element copy cost about as
/// much as the multiply-adds themselves (docs/performance.md).
/// Indices are checked once per panel, by slicing the span that holds it (GemmChecks has checked
/// the matrices); the copies inside run on refs.
/// </remarks>
internal static class GemmPacking
{
    /// <summary>
    /// dst[p·w + r] = src[r·ld + p] for r &lt; count, p &lt; kc; zero for count &lt;= r &lt; w.
    /// <paramref name="src"/> starts at the panel's first row and depth.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transposed<T>(ReadOnlySpan<T> src, int ld, int count, int kc, int w, Span<T> dst)
        where T : unmanaged
    {
        var panel = dst[..(kc * w)];
        if (count < w) panel.Clear();
        ref T s = ref MemoryMarshal.GetReference(src[..((count - 1) * ld + kc)]);
        ref T d = ref MemoryMarshal.GetReference(panel);
        int r = 0;
        if (CanTranspose4<T>())
            for (; r + 4 <= count; r += 4)
            {
                ref T rows = ref Unsafe.Add(ref s, r * ld);
                int p = 0;
                for (; p + 4 <= kc; p += 4)
                    Transpose4(ref Unsafe.Add(ref rows, p), ld, ref Unsafe.Add(ref d, p * w + r), w);
                for (; p < kc; p++)
                    for (int q = 0; q < 4; q++) Unsafe.Add(ref d, p * w + r + q) = Unsafe.Add(ref rows, q * ld + p);
            }
        for (; r < count; r++)
        {
            ref T row = ref Unsafe.Add(ref s, r * ld);
            for (int p = 0; p < kc; p++) Unsafe.Add(ref d, p * w + r) = Unsafe.Add(ref row, p);
        }
    }

    /// <summary>
    /// dst[p·w + j] = src[p·ld + j] for j &lt; count, p &lt; kc; zero for count &lt;= j &lt; w.
    /// <paramref name="src"/> starts at the panel's first depth and column.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Contiguous<T>(ReadOnlySpan<T> src, int ld, int count, int kc, int w, Span<T> dst)
        where T : unmanaged
    {
        var panel = dst[..(kc * w)];
        if (count < w) panel.Clear();
        ref T s = ref MemoryMarshal.GetReference(src[..((kc - 1) * ld + count)]);
        ref T d = ref MemoryMarshal.GetReference(panel);
        int v = Vector<T>.Count, vectors = count / v;
        for (int p = 0; p < kc; p++)
        {
            ref T from = ref Unsafe.Add(ref s, p * ld);
            ref T to = ref Unsafe.Add(ref d, p * w);
            int j = 0;
            for (int q = 0; q < vectors; q++, j += v) Vector.StoreUnsafe(Vector.LoadUnsafe(ref from, (nuint)j), ref to, (nuint)j);
            for (; j < count; j++) Unsafe.Add(ref to, j) = Unsafe.Add(ref from, j);
        }
    }

    private static bool CanTranspose4<T>() =>
        (typeof(T) == typeof(double) && Avx.IsSupported) || (typeof(T) == typeof(float) && Sse.IsSupported);

    /// <summary>d[p·dw + r] = s[r·ld + p] for r, p &lt; 4: four rows of four values, transposed in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4<T>(ref T s, int ld, ref T d, int dw) where T : unmanaged
    {
        if (typeof(T) == typeof(double) && Avx.IsSupported)
        {
            ref double x = ref Unsafe.As<T, double>(ref s);
            ref double y = ref Unsafe.As<T, double>(ref d);
            var r0 = Vector256.LoadUnsafe(ref x);
            var r1 = Vector256.LoadUnsafe(ref x, (nuint)ld);
            var r2 = Vector256.LoadUnsafe(ref x, (nuint)(2 * ld));
            var r3 = Vector256.LoadUnsafe(ref x, (nuint)(3 * ld));
            var t0 = Avx.UnpackLow(r0, r1);    // r0[0] r1[0] r0[2] r1[2]
            var t1 = Avx.UnpackHigh(r0, r1);   // r0[1] r1[1] r0[3] r1[3]
            var t2 = Avx.UnpackLow(r2, r3);
            var t3 = Avx.UnpackHigh(r2, r3);
            Avx.Permute2x128(t0, t2, 0x20).StoreUnsafe(ref y);
            Avx.Permute2x128(t1, t3, 0x20).StoreUnsafe(ref y, (nuint)dw);
            Avx.Permute2x128(t0, t2, 0x31).StoreUnsafe(ref y, (nuint)(2 * dw));
            Avx.Permute2x128(t1, t3, 0x31).StoreUnsafe(ref y, (nuint)(3 * dw));
        }
        else if (typeof(T) == typeof(float) && Sse.IsSupported)
        {
            ref float x = ref Unsafe.As<T, float>(ref s);
            ref float y = ref Unsafe.As<T, float>(ref d);
            var r0 = Vector128.LoadUnsafe(ref x);
            var r1 = Vector128.LoadUnsafe(ref x, (nuint)ld);
            var r2 = Vector128.LoadUnsafe(ref x, (nuint)(2 * ld));
            var r3 = Vector128.LoadUnsafe(ref x, (nuint)(3 * ld));
            var t0 = Sse.UnpackLow(r0, r1);    // r0[0] r1[0] r0[1] r1[1]
            var t1 = Sse.UnpackHigh(r0, r1);   // r0[2] r1[2] r0[3] r1[3]
            var t2 = Sse.UnpackLow(r2, r3);
            var t3 = Sse.UnpackHigh(r2, r3);
            Sse.MoveLowToHigh(t0, t2).StoreUnsafe(ref y);
            Sse.MoveHighToLow(t2, t0).StoreUnsafe(ref y, (nuint)dw);
            Sse.MoveLowToHigh(t1, t3).StoreUnsafe(ref y, (nuint)(2 * dw));
            Sse.MoveHighToLow(t3, t1).StoreUnsafe(ref y, (nuint)(3 * dw));
        }
        else
            throw new NotSupportedException($"4 x 4 transpose of {typeof(T).Name}");
    }
}
