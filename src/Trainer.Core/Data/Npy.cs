using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Trainer.Core.Data;

/// <summary>An array read from numpy's .npy format, converted to float64 (exactly: see <see cref="Npy"/>).</summary>
public sealed record NpyArray(double[] Data, int[] Shape, string Dtype)
{
    /// <summary>True for an integer dtype (int64, int32, uint8): class labels, for instance.</summary>
    public bool IsInteger => Dtype is "<i8" or "<i4" or "|u1";

    /// <summary>numpy's name of the dtype: float64, float32, int64, int32, uint8.</summary>
    public string DtypeName => Npy.DtypeName(Dtype);
}

/// <summary>
/// What a .npy file's header says: the dtype descriptor, the shape, where the values start
/// (<see cref="DataOffset"/>, in bytes from the file's start) and the bytes per value.
/// </summary>
public sealed record NpyHeader(string Descr, int[] Shape, long DataOffset, int Width)
{
    /// <summary>The number of values.</summary>
    public long Count => Shape.Aggregate(1L, (acc, d) => acc * d);

    /// <summary>The bytes of the values (the file's size less <see cref="DataOffset"/>, as checked).</summary>
    public long DataBytes => Count * Width;
}

/// <summary>A .npy stream that cannot be used; the message names the source and what is wrong.</summary>
public sealed class NpyFormatException(string message) : FormatException(message);

/// <summary>
/// numpy's .npy format (versions 1.0-3.0), C order, little-endian float64 ('&lt;f8'), float32
/// ('&lt;f4'), int64 ('&lt;i8'), int32 ('&lt;i4') or uint8 ('|u1'), every value converted to float64
/// exactly: an int64 beyond ±2^53, which float64 cannot hold, is refused. Written by hand: the format
/// is a 10-line header plus raw values, and no maintained .NET package reads it without pulling in a
/// whole tensor library.
/// </summary>
public static partial class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads a whole array; <paramref name="source"/> names it in error messages (usually the file path).</summary>
    public static NpyArray Read(Stream stream, string source)
    {
        // NOTE: every size the header claims is checked against the bytes the stream holds before
        // anything that size is allocated, so a lying header costs nothing. That needs the length:
        // a stream that cannot seek is first read into memory (its real bytes, not its claims).
        if (!stream.CanSeek)
        {
            var copy = new MemoryStream();
            stream.CopyTo(copy);
            copy.Position = 0;
            stream = copy;
        }
        var header = ReadHeader(stream, source);
        var raw = ReadExactly(stream, header.DataBytes, source, $"the data ({header.Count} values of {header.Width} bytes)");
        return new NpyArray(Values(raw, header.Descr, header.Count, source), header.Shape, header.Descr);
    }

    /// <summary>
    /// Reads and checks the header of a seekable .npy stream, leaving the stream at the first value:
    /// the dtype, the shape, and that the stream holds exactly the values the shape needs (no more:
    /// trailing bytes are refused; no less). What a reader of the values in place (a memory-mapped
    /// file) needs before it touches them.
    /// </summary>
    public static NpyHeader ReadHeader(Stream stream, string source)
    {
        if (!stream.CanSeek) throw new ArgumentException("The stream must be seekable (its length is checked against the header).", nameof(stream));
        var prefix = ReadExactly(stream, 8, source, "the magic string");
        if (!prefix.AsSpan(0, 6).SequenceEqual(Magic))
            throw new NpyFormatException($"{source}: not a .npy file (it does not start with \\x93NUMPY).");
        int major = prefix[6];
        long headerLength = major switch
        {
            1 => BinaryPrimitives.ReadUInt16LittleEndian(ReadExactly(stream, 2, source, "the header length")),
            2 or 3 => BinaryPrimitives.ReadUInt32LittleEndian(ReadExactly(stream, 4, source, "the header length")),
            _ => throw new NpyFormatException($"{source}: .npy version {major}.{prefix[7]} is not supported; allowed: 1.x, 2.x, 3.x."),
        };
        var header = Encoding.Latin1.GetString(ReadExactly(stream, headerLength, source, "the header"));

        var descr = HeaderField(DescrPattern(), header, source, "descr");
        var fortran = HeaderField(FortranPattern(), header, source, "fortran_order");
        var shapeText = HeaderField(ShapePattern(), header, source, "shape");
        if (fortran == "True")
            throw new NpyFormatException($"{source}: fortran_order is True; allowed: C order only (save with np.ascontiguousarray).");
        int width = descr switch
        {
            "<f8" or "<i8" => 8,
            "<f4" or "<i4" => 4,
            "|u1" => 1,
            _ => throw new NpyFormatException($"{source}: dtype '{descr}' is not supported; allowed: float64 ('<f8'), float32 ('<f4'), int64 ('<i8'), int32 ('<i4') or uint8 ('|u1'), little-endian (class labels must be integers)."),
        };
        var shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var d) ? d
                : s.Length > 0 && s.All(char.IsAsciiDigit)
                    ? throw new NpyFormatException($"{source}: shape ({shapeText}) has a dimension of {s}; allowed: at most {int.MaxValue} per dimension.")
                    : throw new NpyFormatException($"{source}: shape ({shapeText}) is not a tuple of non-negative integers."))
            .ToArray();
        // NOTE: bound the size in double first: a long product of int dimensions can wrap (65536^4 is 0),
        // and the raw bytes (count * width), not just the values, must fit in one array.
        double bytes = shape.Aggregate((double)width, (acc, d) => acc * d);
        if (bytes > Array.MaxLength)
            throw new NpyFormatException($"{source}: shape ({shapeText}) needs {bytes:G4} bytes; at most {Array.MaxLength} bytes ({Array.MaxLength / width} values of {width} bytes) can be read.");
        long count = shape.Aggregate(1L, (acc, d) => acc * d);
        long remaining = stream.Length - stream.Position;
        if (remaining != count * width)
            throw new NpyFormatException($"{source}: {remaining} bytes after the header, but its shape {ShapeText(shape)} {DtypeName(descr)} needs {count * width}"
                + (remaining > count * width ? "; the file has trailing bytes (it was not written by numpy.save, or was appended to)." : "; it is truncated."));
        return new NpyHeader(descr, shape, stream.Position, width);
    }

    /// <summary>numpy's name of a supported dtype descriptor ('&lt;f8' is float64).</summary>
    public static string DtypeName(string descr) => descr switch
    {
        "<f8" => "float64",
        "<f4" => "float32",
        "<i8" => "int64",
        "<i4" => "int32",
        "|u1" => "uint8",
        _ => descr,
    };

    private static double[] Values(byte[] raw, string descr, long count, string source)
    {
        var data = new double[count];
        switch (descr)
        {
            case "<f8":
                for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadDoubleLittleEndian(raw.AsSpan(i * 8));
                break;
            case "<f4":
                for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan(i * 4));
                break;
            case "<i8":
                const long exact = 1L << 53;
                for (int i = 0; i < data.Length; i++)
                {
                    long value = BinaryPrimitives.ReadInt64LittleEndian(raw.AsSpan(i * 8));
                    if (value > exact || value < -exact)
                        throw new NpyFormatException($"{source}: value {value} at index {i} is beyond ±2^53, so float64 cannot hold it exactly; allowed: int64 values from -{exact} to {exact}.");
                    data[i] = value;
                }
                break;
            case "<i4":
                for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(i * 4));
                break;
            default:
                for (int i = 0; i < data.Length; i++) data[i] = raw[i];
                break;
        }
        return data;
    }

    /// <summary>Writes float64 values as a version 1.0, C-order '&lt;f8' array.</summary>
    public static void Write(Stream stream, ReadOnlySpan<double> data, params int[] shape)
    {
        WriteHeader(stream, "<f8", data.Length, shape);
        WriteValues(stream, data, 8, static (span, value) => BinaryPrimitives.WriteDoubleLittleEndian(span, value));
    }

    /// <summary>Writes float32 values as a version 1.0, C-order '&lt;f4' array.</summary>
    public static void Write(Stream stream, ReadOnlySpan<float> data, params int[] shape)
    {
        WriteHeader(stream, "<f4", data.Length, shape);
        WriteValues(stream, data, 4, static (span, value) => BinaryPrimitives.WriteSingleLittleEndian(span, value));
    }

    /// <summary>Writes int64 values (class labels, predicted classes) as a version 1.0, C-order '&lt;i8' array.</summary>
    public static void Write(Stream stream, ReadOnlySpan<long> data, params int[] shape)
    {
        WriteHeader(stream, "<i8", data.Length, shape);
        WriteValues(stream, data, 8, static (span, value) => BinaryPrimitives.WriteInt64LittleEndian(span, value));
    }

    private static void WriteHeader(Stream stream, string descr, int length, int[] shape)
    {
        long count = shape.Aggregate(1L, (acc, d) => acc * d);
        if (count != length)
            throw new ArgumentException($"shape ({string.Join(", ", shape)}) holds {count} values, data has {length}.", nameof(shape));
        string shapeText = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({shapeText}), }}";
        // The header (magic + version + length + dict + '\n') is padded with spaces to a multiple of 64 bytes.
        int unpadded = 10 + dict.Length + 1;
        int total = (unpadded + 63) / 64 * 64;
        var header = dict + new string(' ', total - unpadded) + "\n";
        Span<byte> prefix = stackalloc byte[10];
        Magic.CopyTo(prefix);
        prefix[6] = 1;
        prefix[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(prefix[8..], checked((ushort)header.Length));
        stream.Write(prefix);
        stream.Write(Encoding.Latin1.GetBytes(header));
    }

    private static void WriteValues<T>(Stream stream, ReadOnlySpan<T> data, int width, Action<Span<byte>, T> write)
    {
        var buffer = new byte[width * Math.Min(data.Length, 8192)];
        for (int offset = 0; offset < data.Length; offset += buffer.Length / width)
        {
            int n = Math.Min(buffer.Length / width, data.Length - offset);
            for (int i = 0; i < n; i++) write(buffer.AsSpan(i * width), data[offset + i]);
            stream.Write(buffer, 0, n * width);
        }
    }

    private static string HeaderField(Regex pattern, string header, string source, string field)
    {
        var match = pattern.Match(header);
        return match.Success ? match.Groups[1].Value
            : throw new NpyFormatException($"{source}: the header has no readable '{field}' entry: {header.Trim()}");
    }

    // numpy's spelling: (10, 4), (10,), ().
    private static string ShapeText(int[] shape) => shape.Length == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";

    /// <summary>The next <paramref name="count"/> bytes; a count the stream does not hold (a header's claim) is refused before anything is allocated.</summary>
    private static byte[] ReadExactly(Stream stream, long count, string source, string what)
    {
        if (count > stream.Length - stream.Position)
            throw new NpyFormatException($"{source}: the file ends inside {what}; it is truncated or not a .npy file.");
        if (count > Array.MaxLength)
            throw new NpyFormatException($"{source}: {what} would take {count} bytes; at most {Array.MaxLength} can be read.");
        var buffer = new byte[count];
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException)
        {
            throw new NpyFormatException($"{source}: the file ends inside {what}; it is truncated or not a .npy file.");
        }
        return buffer;
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
