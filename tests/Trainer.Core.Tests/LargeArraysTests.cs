using System.Runtime.InteropServices;
using Trainer.Core.Memory;

namespace Trainer.Core.Tests;

/// <summary>
/// <see cref="LargeArrays"/>: new arrays as <c>new T[n]</c> gives them, and on Linux a large one's memory
/// is marked for transparent huge pages (the mapping's <c>hg</c> flag in /proc/self/smaps) before it is written.
/// </summary>
public class LargeArraysTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(1000)]
    [InlineData(3 << 20)]   // 24 MB of doubles: advised
    public void New_GivesAZeroedArrayOfTheLength(int count)
    {
        var array = LargeArrays.New<double>(count);
        Assert.Equal(count, array.Length);
        Assert.True(array.AsSpan().IndexOfAnyExcept(0.0) < 0, "a new array holds only zeros");
    }

    [Fact]
    public void ALargeArray_IsMarkedForHugePages_AndASmallOneIsNotAdvised()
    {
        Assert.False(LargeArrays.Advise(new double[1000]), "below MinBytes nothing is asked");
        // A kernel built without transparent huge pages refuses the advice (EINVAL); the arrays are plain there.
        if (!OperatingSystem.IsLinux() || !Directory.Exists("/sys/kernel/mm/transparent_hugepage")) return;
        Assert.True(LargeArrays.Enabled, "on Linux the advice is on unless TRAINER_HUGE_PAGES=0");
        var array = LargeArrays.New<byte>(32 << 20);
        var handle = GCHandle.Alloc(array, GCHandleType.Pinned);
        try
        {
            // The middle of the array lies inside its 2 MB-aligned part, which was advised.
            long middle = handle.AddrOfPinnedObject() + array.Length / 2;
            var flags = MappingFlags(middle);
            Assert.True(flags.Contains("hg"), $"the array's mapping has VmFlags '{string.Join(' ', flags)}', without hg (MADV_HUGEPAGE)");
        }
        finally
        {
            handle.Free();
        }
        array[0] = 1;
        Assert.Equal(1, array[0]);
    }

    /// <summary>The VmFlags of the mapping in /proc/self/smaps that holds <paramref name="address"/>.</summary>
    private static string[] MappingFlags(long address)
    {
        bool inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && IsHex(line.AsSpan(0, dash)))
            {
                long start = Convert.ToInt64(line[..dash], 16), end = Convert.ToInt64(line[(dash + 1)..space], 16);
                inside = address >= start && address < end;
            }
            else if (inside && line.StartsWith("VmFlags:", StringComparison.Ordinal))
                return line["VmFlags:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        }
        throw new InvalidOperationException($"no mapping in /proc/self/smaps holds 0x{address:x}");
    }

    private static bool IsHex(ReadOnlySpan<char> text)
    {
        foreach (char c in text)
            if (!char.IsAsciiHexDigit(c)) return false;
        return text.Length > 0;
    }
}
