using System.Buffers.Binary;
using System.Text;
using Trainer.Core.Data;

namespace Trainer.Core.Tests;

/// <summary>
/// The npy and IDX readers against thousands of valid files cut short, appended to and mutated
/// (header bytes, length fields, shapes, dtypes, magic numbers, dimension sizes), from a seed printed
/// in the output (TRAINER_FUZZ_SEED repeats a run). Each read either succeeds with as many values as
/// its shape holds, or throws the reader's own format exception; and whatever the header claims, a
/// read allocates no more than the bytes the file really holds plus 8 bytes per value it returns
/// (from a stream that cannot seek, such as gzip: 4 times the bytes, as its buffer grows by doubling).
/// </summary>
public sealed class ReaderFuzzTests(ITestOutputHelper output)
{
    private const int Cases = 4000;
    // Strings, regex matches, the shape, and the 80 KiB buffer of Stream.CopyTo.
    private const long Overhead = 128 * 1024;

    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("TRAINER_FUZZ_SEED"), out var seed) ? seed : 20251203;

    [Fact]
    public void NpyReader_OnMutatedFiles_ReturnsTheirValuesOrThrowsNpyFormatException_AllocatingNoMoreThanTheFileHolds()
    {
        var random = new Random(Seed);
        byte[][] valid = [Npy(1, "<f8", "(2, 3)", 6 * 8), Npy(1, "<f4", "(4,)", 4 * 4), Npy(1, "<i8", "(3, 1)", 3 * 8), Npy(1, "|u1", "(2, 2, 2)", 8),
            Npy(2, "<f8", "(5,)", 5 * 8), Npy(3, "<i4", "()", 4), Npy(1, "<f8", "(0, 7)", 0)];
        // One-time costs (the regexes, the stream copy's pooled buffer) are not a read's.
        foreach (var stream in new Stream[] { new MemoryStream(valid[0]), new ForwardOnlyStream(valid[0]) }) Trainer.Core.Data.Npy.Read(stream, "warm-up");
        int refused = 0;
        for (int i = 0; i < Cases; i++)
        {
            var file = MutateNpy(valid[random.Next(valid.Length)], random);
            bool seekable = random.Next(2) == 0;
            var outcome = Read(file, seekable, stream => Trainer.Core.Data.Npy.Read(stream, "fuzz.npy"), a => (a.Data.Length, a.Shape), typeof(NpyFormatException), i);
            if (outcome is null) refused++;
        }
        output.WriteLine($"seed {Seed}: {Cases} mutated .npy files, {refused} refused with NpyFormatException, {Cases - refused} read");
        Assert.InRange(refused, Cases / 4, Cases - 1);
    }

    [Fact]
    public void IdxReader_OnMutatedFiles_ReturnsTheirBytesOrThrowsIdxFormatException_AllocatingNoMoreThanTheFileHolds()
    {
        var random = new Random(Seed);
        byte[][] images = [Idx(Trainer.Core.Data.Idx.ImagesMagic, [3, 4, 5]), Idx(Trainer.Core.Data.Idx.ImagesMagic, [1, 28, 28])];
        byte[][] labels = [Idx(Trainer.Core.Data.Idx.LabelsMagic, [10]), Idx(Trainer.Core.Data.Idx.LabelsMagic, [1])];
        int refused = 0;
        for (int i = 0; i < Cases; i++)
        {
            bool readImages = random.Next(2) == 0;
            var source = random.Next(10) == 0 ? (readImages ? labels : images) : readImages ? images : labels;
            var file = MutateIdx(source[random.Next(source.Length)], random);
            bool seekable = random.Next(2) == 0;
            Func<Stream, IdxArray> read = readImages ? s => Trainer.Core.Data.Idx.ReadImages(s, "fuzz-idx") : s => Trainer.Core.Data.Idx.ReadLabels(s, "fuzz-idx");
            // The IDX reader returns the raw bytes: 1 byte per value, counted as 8 by the bound.
            var outcome = Read(file, seekable, read, a => (a.Data.Length, a.Shape), typeof(IdxFormatException), i);
            if (outcome is null) refused++;
        }
        output.WriteLine($"seed {Seed}: {Cases} mutated IDX files, {refused} refused with IdxFormatException, {Cases - refused} read");
        Assert.InRange(refused, Cases / 4, Cases - 1);
    }

    /// <summary>
    /// Reads <paramref name="file"/>; returns the array, or null when the reader refused it with
    /// <paramref name="refusal"/>. Fails on any other exception, a result whose length is not its
    /// shape's product, or an allocation beyond the bound.
    /// </summary>
    private static T? Read<T>(byte[] file, bool seekable, Func<Stream, T> read, Func<T, (int Length, int[] Shape)> describe, Type refusal, int index) where T : class
    {
        using Stream stream = seekable ? new MemoryStream(file, writable: false) : new ForwardOnlyStream(file);
        long before = GC.GetAllocatedBytesForCurrentThread();
        T? result = null;
        Exception? error = null;
        try
        {
            result = read(stream);
        }
        catch (Exception e)
        {
            error = e;
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        string what = $"case {index} (seed {Seed}, {(seekable ? "seekable" : "forward-only")} stream of {file.Length} bytes: {Convert.ToHexString(file.AsSpan(0, Math.Min(file.Length, 96)))})";
        if (error is not null && error.GetType() != refusal)
            Assert.Fail($"{what} threw {error.GetType().Name}, not {refusal.Name}: {error}");
        int values = 0;
        if (result is not null)
        {
            var (length, shape) = describe(result);
            Assert.True(length == shape.Aggregate(1L, (a, d) => a * d), $"{what}: {length} values for shape ({string.Join(", ", shape)})");
            values = length;
        }
        long bound = (seekable ? 1 : 4) * (long)file.Length + 8L * values + Overhead;
        Assert.True(allocated <= bound, $"{what}: allocated {allocated} bytes, more than {bound} (the file's bytes{(seekable ? "" : " x 4")}, 8 per value returned, {Overhead} spare)");
        return result;
    }

    private static byte[] MutateNpy(byte[] valid, Random random)
    {
        var file = (byte[])valid.Clone();
        int headerEnd = 10 + BinaryPrimitives.ReadUInt16LittleEndian(valid.AsSpan(8));
        if (valid[6] != 1) headerEnd = 12 + (int)BinaryPrimitives.ReadUInt32LittleEndian(valid.AsSpan(8));
        switch (random.Next(8))
        {
            case 0: return file[..random.Next(file.Length)];
            case 1: return [.. file, .. RandomBytes(random, 1 + random.Next(40))];
            case 2:
                for (int n = 1 + random.Next(4); n > 0; n--) file[random.Next(headerEnd)] = (byte)random.Next(256);
                return file;
            case 3:
                // A lying header length, 2 or 4 bytes as the version says (possibly another version).
                file[6] = (byte)(1 + random.Next(3));
                if (file[6] == 1) BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(8), (ushort)random.Next(65536));
                else BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(8), random.Next(2) == 0 ? (uint)random.NextInt64(uint.MaxValue) : (uint)random.Next(file.Length));
                return file;
            case 4: return Npy(valid[6], Descr(valid), RandomShape(random), DataLength(valid, headerEnd), random);
            case 5: return Npy(valid[6], RandomDescr(random), ShapeOf(valid), DataLength(valid, headerEnd), random);
            case 6: return Npy(valid[6], Descr(valid), ShapeOf(valid), random.Next(2) == 0 ? DataLength(valid, headerEnd) : random.Next(200), random, garbleHeader: true);
            default:
                for (int n = 1 + random.Next(8); n > 0; n--) file[random.Next(file.Length)] = (byte)random.Next(256);
                return file;
        }
    }

    private static byte[] MutateIdx(byte[] valid, Random random)
    {
        var file = (byte[])valid.Clone();
        int dims = valid[3];
        switch (random.Next(6))
        {
            case 0: return file[..random.Next(file.Length)];
            case 1: return [.. file, .. RandomBytes(random, 1 + random.Next(40))];
            case 2:
                // A lying dimension size: zero, huge, beyond int, or a little off.
                int d = random.Next(dims);
                uint size = BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(4 + 4 * d));
                uint lie = random.Next(4) switch { 0 => 0, 1 => (uint)random.NextInt64(uint.MaxValue), 2 => 0x7FFFFFFF, _ => size + (uint)random.Next(1, 5) };
                BinaryPrimitives.WriteUInt32BigEndian(file.AsSpan(4 + 4 * d), lie);
                return file;
            case 3:
                file[random.Next(4)] = (byte)random.Next(256);
                return file;
            case 4:
                file[0] = 0x1f;
                file[1] = 0x8b;
                return file;
            default:
                for (int n = 1 + random.Next(8); n > 0; n--) file[random.Next(file.Length)] = (byte)random.Next(256);
                return file;
        }
    }

    private static string Descr(byte[] file) => Encoding.Latin1.GetString(file).Split('\'')[3];

    private static string ShapeOf(byte[] file)
    {
        var text = Encoding.Latin1.GetString(file);
        int start = text.IndexOf("'shape': ", StringComparison.Ordinal) + 9;
        return text[start..(text.IndexOf(')', start) + 1)];
    }

    private static int DataLength(byte[] file, int headerEnd) => file.Length - headerEnd;

    private static string RandomDescr(Random random) =>
        new[] { "<f8", "<f4", "<i8", "<i4", "|u1", ">f8", "<f2", "<c16", "|b1", "", "<U10", "O" }[random.Next(12)];

    private static string RandomShape(Random random)
    {
        string Dim() => random.Next(6) switch
        {
            0 => "0",
            1 => random.Next(10).ToString(),
            2 => int.MaxValue.ToString(),
            3 => "-1",
            4 => "99999999999",
            _ => random.Next(1 << 16).ToString(),
        };
        int n = random.Next(6);
        return n == 1 ? $"({Dim()},)" : $"({string.Join(", ", Enumerable.Range(0, n).Select(_ => Dim()))})";
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A .npy file of version <paramref name="major"/>.0 with this header and <paramref name="dataBytes"/> bytes of (random) data.</summary>
    private static byte[] Npy(int major, string descr, string shape, int dataBytes, Random? random = null, bool garbleHeader = false)
    {
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        if (garbleHeader && random is not null)
        {
            var chars = dict.ToCharArray();
            for (int n = 1 + random.Next(3); n > 0; n--) chars[random.Next(chars.Length)] = "(),:'0123456789 {}TrueFals"[random.Next(26)];
            dict = new string(chars);
        }
        int prefix = major == 1 ? 10 : 12;
        int total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        var header = dict + new string(' ', total - prefix - dict.Length - 1) + "\n";
        var file = new byte[total + dataBytes];
        file[0] = 0x93;
        "NUMPY"u8.CopyTo(file.AsSpan(1));
        file[6] = (byte)major;
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(8), (ushort)header.Length);
        else BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(8), (uint)header.Length);
        Encoding.Latin1.GetBytes(header).CopyTo(file, prefix);
        (random ?? new Random(major)).NextBytes(file.AsSpan(total));
        // Integer data within ±2^53 (an int64 beyond is refused, by design, not by fuzzing).
        if (descr == "<i8") for (int i = total; i + 8 <= file.Length; i += 8) file[i + 7] = 0;
        return file;
    }

    /// <summary>An IDX file of unsigned bytes with this magic number and shape, values random.</summary>
    private static byte[] Idx(int magic, int[] shape)
    {
        int count = shape.Aggregate(1, (a, d) => a * d);
        var file = new byte[4 + 4 * shape.Length + count];
        BinaryPrimitives.WriteInt32BigEndian(file, magic);
        for (int d = 0; d < shape.Length; d++) BinaryPrimitives.WriteInt32BigEndian(file.AsSpan(4 + 4 * d), shape[d]);
        new Random(magic).NextBytes(file.AsSpan(4 + 4 * shape.Length));
        return file;
    }

    /// <summary>A stream that cannot seek and has no length, as a gzip stream or a pipe.</summary>
    private sealed class ForwardOnlyStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _inner = new(bytes, writable: false);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 1000));
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
