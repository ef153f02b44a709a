using System.Buffers.Binary;

namespace Trainer.Core.Data;

/// <summary>An array of unsigned bytes read from an IDX file: MNIST's images (N, rows, cols) or labels (N).</summary>
public sealed record IdxArray(byte[] Data, int[] Shape)
{
    /// <summary>The first dimension: images or labels in the file.</summary>
    public int Count => Shape[0];

    /// <summary>Values per item: rows x cols for images, 1 for labels.</summary>
    public int ItemSize => Data.Length / Shape[0];
}

/// <summary>What an uncompressed IDX file's header says: the shape, and where the bytes start (<see cref="DataOffset"/>).</summary>
public sealed record IdxHeader(int[] Shape, long DataOffset)
{
    /// <summary>The first dimension: images or labels in the file.</summary>
    public int Count => Shape[0];

    /// <summary>Values per item: rows x cols for images, 1 for labels.</summary>
    public int ItemSize => Shape.Skip(1).Aggregate(1, (acc, d) => acc * d);
}

/// <summary>An IDX stream that cannot be used; the message names the source and what was expected.</summary>
public sealed class IdxFormatException(string message) : FormatException(message);

/// <summary>
/// The IDX format of MNIST and its family (Fashion-MNIST, KMNIST): a big-endian magic number
/// 0x00 0x00 type dims, then dims big-endian int32 sizes, then the values in C order. Only type
/// 0x08 (unsigned byte), the one those datasets use, is read. Images are 0x00000803 (N, rows, cols),
/// labels 0x00000801 (N). Every claimed size is read only as far as the stream really goes, so a
/// header that lies costs no more memory than the bytes the stream holds.
/// </summary>
public static class Idx
{
    public const int ImagesMagic = 0x00000803;
    public const int LabelsMagic = 0x00000801;

    /// <summary>Reads an images file: 3 dimensions (N, rows, cols), N ≥ 1.</summary>
    public static IdxArray ReadImages(Stream stream, string source) => Read(stream, source, ImagesMagic, ImagesWhat);

    /// <summary>Reads a labels file: 1 dimension (N), N ≥ 1.</summary>
    public static IdxArray ReadLabels(Stream stream, string source) => Read(stream, source, LabelsMagic, LabelsWhat);

    /// <summary>
    /// Pixels as float64 values: byte / 255 (in [0, 1], the default, <paramref name="scale"/> null), or
    /// byte × <paramref name="scale"/>. Either way each byte value maps to one fixed double, as numpy's
    /// <c>x / 255.0</c> or <c>x * scale</c> gives it.
    /// </summary>
    public static double[] Values(ReadOnlySpan<byte> data, double? scale)
    {
        var table = ByteValues(scale);
        var values = new double[data.Length];
        for (int i = 0; i < values.Length; i++) values[i] = table[data[i]];
        return values;
    }

    /// <summary>
    /// Reads and checks the header of a seekable, uncompressed IDX stream, leaving it at the first
    /// value: the shape, and that the stream holds exactly the bytes the shape promises (no trailing
    /// bytes, none missing). What a reader of the values in place (a memory-mapped file) needs first.
    /// </summary>
    public static IdxHeader ReadHeader(Stream stream, string source, bool images)
    {
        if (!stream.CanSeek) throw new ArgumentException("The stream must be seekable (its length is checked against the header).", nameof(stream));
        var (magic, what) = images ? (ImagesMagic, ImagesWhat) : (LabelsMagic, LabelsWhat);
        var shape = ReadShape(stream, source, magic, what, out long count);
        long held = stream.Length - stream.Position;
        if (held < count) throw Truncated(source, shape, count, held);
        if (held > count) throw Trailing(source, shape, count, held - count);
        return new IdxHeader(shape, stream.Position);
    }

    /// <summary>The value of each byte 0..255 as <see cref="Values"/> maps it.</summary>
    public static double[] ByteValues(double? scale)
    {
        var table = new double[256];
        for (int b = 0; b < 256; b++) table[b] = scale is { } factor ? b * factor : b / 255.0;
        return table;
    }

    private const string ImagesWhat = "an images file (N, rows, cols)", LabelsWhat = "a labels file (N)";

    private static IdxArray Read(Stream stream, string source, int magic, string what)
    {
        var shape = ReadShape(stream, source, magic, what, out long count);
        var data = ReadUpTo(stream, (int)count);
        if (data.Length < count) throw Truncated(source, shape, count, data.Length);
        long trailing = CountRemaining(stream);
        if (trailing > 0) throw Trailing(source, shape, count, trailing);
        return new IdxArray(data, shape);
    }

    private static IdxFormatException Truncated(string source, int[] shape, long count, long held) =>
        new($"{source}: the header promises {ShapeText(shape)} = {count} bytes of data, but the file holds {held}; it is truncated.");

    private static IdxFormatException Trailing(string source, int[] shape, long count, long trailing) =>
        new($"{source}: {trailing} byte(s) after the {count} its header {ShapeText(shape)} promises; the file was appended to, or its header is wrong.");

    /// <summary>The magic number and the dimensions, checked; <paramref name="count"/>: the values they promise.</summary>
    private static int[] ReadShape(Stream stream, string source, int magic, string what, out long count)
    {
        var head = ReadUpTo(stream, 4);
        if (head.Length < 4)
            throw new IdxFormatException($"{source}: the file ends inside the IDX magic number ({head.Length} of 4 bytes); it is empty or truncated.");
        if (head[0] == 0x1f && head[1] == 0x8b)
            throw new IdxFormatException($"{source}: the file is gzip-compressed; name it with .gz so it is decompressed, or gunzip it.");
        int found = BinaryPrimitives.ReadInt32BigEndian(head);
        if (found != magic)
            throw new IdxFormatException($"{source}: magic number 0x{found:X8} is not {what}'s 0x{magic:X8}"
                + (head[0] != 0 || head[1] != 0 ? " (it is not an IDX file: those start with two zero bytes)."
                    : head[2] != 0x08 ? $" (type 0x{head[2]:X2}; only 0x08, unsigned bytes, is supported)."
                    : $" ({head[3]} dimension(s) where {magic & 0xFF} are expected)."));

        int dims = magic & 0xFF;
        var sizes = ReadUpTo(stream, 4 * dims);
        if (sizes.Length < 4 * dims)
            throw new IdxFormatException($"{source}: the file ends inside its {dims} dimension size(s) ({sizes.Length} of {4 * dims} bytes); it is truncated.");
        var shape = new int[dims];
        count = 1;
        for (int d = 0; d < dims; d++)
        {
            uint size = BinaryPrimitives.ReadUInt32BigEndian(sizes.AsSpan(4 * d));
            if (size == 0 || size > int.MaxValue)
                throw new IdxFormatException($"{source}: dimension {d} is {size}; allowed: 1 to {int.MaxValue}.");
            shape[d] = (int)size;
            count *= size;
            if (count > Array.MaxLength)
                throw new IdxFormatException($"{source}: shape ({string.Join(", ", shape[..(d + 1)])}, ...) needs more than {Array.MaxLength} bytes, the most one array can hold.");
        }
        return shape;
    }

    private static string ShapeText(int[] shape) => $"({string.Join(" x ", shape)})";

    /// <summary>
    /// Up to <paramref name="count"/> bytes, fewer where the stream ends, never in a buffer of a size
    /// only claimed: a stream that can seek says how much it holds; any other (a gzip stream has no
    /// length) fills a buffer that grows with the bytes that arrive, doubling from 64 KiB.
    /// </summary>
    private static byte[] ReadUpTo(Stream stream, int count)
    {
        int first = stream.CanSeek ? (int)Math.Clamp(stream.Length - stream.Position, 0, count) : Math.Min(count, 1 << 16);
        var buffer = new byte[first];
        int filled = 0;
        while (filled < count)
        {
            if (filled == buffer.Length) Array.Resize(ref buffer, (int)Math.Min(count, 2L * buffer.Length));
            int read = stream.Read(buffer, filled, buffer.Length - filled);
            if (read == 0) break;
            filled += read;
        }
        if (filled < buffer.Length) Array.Resize(ref buffer, filled);
        return buffer;
    }

    private static long CountRemaining(Stream stream)
    {
        Span<byte> scratch = stackalloc byte[4096];
        long total = 0;
        for (int read; (read = stream.Read(scratch)) > 0;) total += read;
        return total;
    }
}
