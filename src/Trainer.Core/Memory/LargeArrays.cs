using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Trainer.Core.Memory;

/// <summary>
/// Arrays of a model's size (parameters, gradients, optimizer state, the packs and payloads that carry
/// them) whose memory asks Linux for transparent huge pages before it is first written.
/// </summary>
/// <remarks>
/// A new array's pages are mapped when first written, one fault per 4 KB page, and on a paravirtualised
/// VM each fault traps to the hypervisor, so the first writes of a large model's arrays weigh on its
/// first steps (docs/performance.md, "Huge pages for model-sized arrays"). Where transparent huge pages are in <c>madvise</c> mode (Debian's default),
/// memory gets them only when asked with <c>madvise(MADV_HUGEPAGE)</c>, and then a fault maps 2 MB.
/// The GC never asks, and .NET's own setting (<c>GCLargePages</c>) needs hugetlbfs pages an administrator
/// reserved, so this asks for the 2 MB-aligned part of each large array right after allocating it. The
/// contents are what a new array's are (zeroed, or for <see cref="NewUninitialized{T}"/> unspecified);
/// only where the pages come from changes. Elsewhere (another OS, THP off, a failing call) these are
/// plain arrays. <c>TRAINER_HUGE_PAGES=0</c> turns the advice off.
/// </remarks>
public static class LargeArrays
{
    /// <summary>Arrays below this size are left alone: their few faults are not worth a system call and a split mapping.</summary>
    public const long MinBytes = 8L << 20;

    private const long HugePage = 2L << 20;
    private const int MadvHugePage = 14;

    /// <summary>Whether arrays are advised here (Linux, and not turned off by <c>TRAINER_HUGE_PAGES=0</c>).</summary>
    public static bool Enabled { get; } = OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("TRAINER_HUGE_PAGES") != "0";

    /// <summary>A zeroed array, as <c>new T[count]</c>, advised when large.</summary>
    public static T[] New<T>(int count) where T : unmanaged
    {
        var array = new T[count];
        Advise(array);
        return array;
    }

    /// <summary>An array whose contents are unspecified, as <see cref="GC.AllocateUninitializedArray{T}"/>, advised when large.</summary>
    public static T[] NewUninitialized<T>(int count) where T : unmanaged
    {
        var array = GC.AllocateUninitializedArray<T>(count);
        Advise(array);
        return array;
    }

    /// <summary>
    /// Asks for huge pages under the whole 2 MB pages inside <paramref name="array"/>; true when asked.
    /// Pages already written stay as they are (the kernel may merge them later).
    /// </summary>
    public static bool Advise<T>(T[] array) where T : unmanaged
    {
        if (!Enabled || (long)array.Length * Unsafe.SizeOf<T>() < MinBytes) return false;
        // Pinned only for the call: the advice belongs to the address range, which a large array keeps
        // (the GC does not compact the large object heap unless told to).
        var handle = GCHandle.Alloc(array, GCHandleType.Pinned);
        try
        {
            long first = handle.AddrOfPinnedObject();
            long start = (first + HugePage - 1) & ~(HugePage - 1);
            long end = (first + (long)array.Length * Unsafe.SizeOf<T>()) & ~(HugePage - 1);
            return end > start && madvise((nint)start, (nuint)(end - start), MadvHugePage) == 0;
        }
        finally
        {
            handle.Free();
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int madvise(nint address, nuint length, int advice);
}
