using System.Numerics;
using System.Runtime.InteropServices;
using Trainer.Core.Training;

namespace Trainer.Core.Data;

/// <summary>How a file stores its values: numpy's little-endian dtypes, or IDX's unsigned bytes.</summary>
public enum StoredType
{
    Float64,
    Float32,
    Int64,
    Int32,
    UInt8,
}

/// <summary>
/// An array of numbers as a file stores them (C order, little-endian), read in place: the bytes may
/// be a memory-mapped file's, so only the values read are touched. Each value is converted to the
/// reader's precision as the upload path converts it, so both give the same bits: a float32 value
/// stays itself in a float32 job and widens exactly in a float64 one; float64 values are narrowed
/// by rounding (as <see cref="Precisions.Narrow(ReadOnlySpan{double})"/>); integers go through their
/// exact float64 value; unsigned bytes map through a table (IDX pixels: <see cref="Idx.ByteValues"/>).
/// </summary>
/// <remarks>
/// NOTE: assumes a little-endian machine (x64, arm64), as the .npy reader's dtypes are; <see cref="Require"/> checks it.
/// </remarks>
public sealed class StoredArray
{
    private readonly ReadOnlyMemory<byte> _bytes;
    private readonly double[] _byteValues;
    private readonly float[] _byteValuesSingle;

    /// <param name="bytes">The values (no header), exactly as many as <paramref name="shape"/> holds.</param>
    /// <param name="byteValues">UInt8 only: the value of each byte 0..255 (null: the byte itself).</param>
    public StoredArray(ReadOnlyMemory<byte> bytes, StoredType type, int[] shape, double[]? byteValues = null)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Stored arrays are little-endian; this machine is not.");
        if (shape.Length == 0 || shape.Any(d => d < 0)) throw new ArgumentException("A stored array has at least one dimension, none negative.", nameof(shape));
        Type = type;
        Shape = shape;
        Columns = shape.Skip(1).Aggregate(1, (acc, d) => checked(acc * d));
        if (bytes.Length != (long)Rows * Columns * WidthOf(type))
            throw new ArgumentException($"{bytes.Length} bytes for shape ({string.Join(", ", shape)}) of {type}; it needs {(long)Rows * Columns * WidthOf(type)}.", nameof(bytes));
        _bytes = bytes;
        _byteValues = byteValues ?? [.. Enumerable.Range(0, 256).Select(b => (double)b)];
        if (_byteValues.Length != 256) throw new ArgumentException("A byte table has 256 values.", nameof(byteValues));
        _byteValuesSingle = Precisions.Narrow(_byteValues);
        Encoding = type switch
        {
            StoredType.Float64 => InputEncoding.Float64,
            StoredType.Float32 => InputEncoding.Float32,
            StoredType.UInt8 => InputEncoding.Bytes(_byteValues),
            _ => InputEncoding.Float64,
        };
    }

    /// <summary>numpy's dtype descriptor as a stored type ('&lt;f4' is float32); null for any other.</summary>
    public static StoredType? TypeOf(string descr) => descr switch
    {
        "<f8" => StoredType.Float64,
        "<f4" => StoredType.Float32,
        "<i8" => StoredType.Int64,
        "<i4" => StoredType.Int32,
        "|u1" => StoredType.UInt8,
        _ => null,
    };

    public static int WidthOf(StoredType type) => type switch
    {
        StoredType.Float64 or StoredType.Int64 => 8,
        StoredType.Float32 or StoredType.Int32 => 4,
        _ => 1,
    };

    public StoredType Type { get; }
    public int[] Shape { get; }
    public int Rows => Shape[0];
    /// <summary>Values per row: the product of the dimensions after the first (1 for a 1-D array).</summary>
    public int Columns { get; }
    public bool IsInteger => Type is StoredType.Int64 or StoredType.Int32 or StoredType.UInt8;

    /// <summary>How an upload carries these values: as stored when they are float64, float32 or bytes; other integers as their float64 values.</summary>
    public InputEncoding Encoding { get; }

    /// <summary>Values [<paramref name="first"/>, first + <paramref name="count"/>) as <see cref="Encoding"/> holds them, into <paramref name="to"/> (count × its width bytes).</summary>
    public void ReadEncoded(long first, int count, Span<byte> to)
    {
        if (to.Length != (long)count * Encoding.Width)
            throw new ArgumentException($"{count} values as {Encoding} are {(long)count * Encoding.Width} bytes; {to.Length} were given.", nameof(to));
        if (Encoding.Type == Type) _bytes.Span.Slice(checked((int)(first * WidthOf(Type))), to.Length).CopyTo(to);
        else Read(first, MemoryMarshal.Cast<byte, double>(to));
    }

    /// <summary>Values [<paramref name="first"/>, first + to.Length) into <paramref name="to"/>, converted to T.</summary>
    public void Read<T>(long first, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = WidthOf(Type);
        var raw = _bytes.Span.Slice(checked((int)(first * width)), to.Length * width);
        switch (Type)
        {
            case StoredType.Float64:
                Precisions.Narrow(MemoryMarshal.Cast<byte, double>(raw), to);
                break;
            case StoredType.Float32:
                var singles = MemoryMarshal.Cast<byte, float>(raw);
                if (typeof(T) == typeof(float)) singles.CopyTo(MemoryMarshal.Cast<T, float>(to));
                else Precisions.Widen(singles, MemoryMarshal.Cast<T, double>(to));
                break;
            case StoredType.Int64:
                var longs = MemoryMarshal.Cast<byte, long>(raw);
                for (int i = 0; i < to.Length; i++) to[i] = SampleRows.FromDouble<T>(longs[i]);
                break;
            case StoredType.Int32:
                var ints = MemoryMarshal.Cast<byte, int>(raw);
                for (int i = 0; i < to.Length; i++) to[i] = SampleRows.FromDouble<T>(ints[i]);
                break;
            default:
                var table = typeof(T) == typeof(float) ? MemoryMarshal.Cast<float, T>(_byteValuesSingle) : MemoryMarshal.Cast<double, T>(_byteValues);
                for (int i = 0; i < to.Length; i++) to[i] = table[raw[i]];
                break;
        }
    }

    /// <summary>
    /// Refuses the values a job cannot train on, naming <paramref name="source"/>: a NaN or infinity
    /// (its row and column, as <see cref="FiniteValues"/>), or an int64 beyond ±2^53, which float64
    /// cannot hold exactly (as the .npy reader). One pass over the values: the check a silo caches per file.
    /// </summary>
    public void Require(string source)
    {
        var raw = _bytes.Span;
        switch (Type)
        {
            case StoredType.Float64:
                FiniteValues.Require(MemoryMarshal.Cast<byte, double>(raw), Columns, source);
                break;
            case StoredType.Float32:
                FiniteValues.Require(MemoryMarshal.Cast<byte, float>(raw), Columns, source);
                break;
            case StoredType.Int64:
                const long exact = 1L << 53;
                var longs = MemoryMarshal.Cast<byte, long>(raw);
                for (int i = 0; i < longs.Length; i++)
                    if (longs[i] > exact || longs[i] < -exact)
                        throw new NpyFormatException($"{source}: value {longs[i]} at index {i} is beyond ±2^53, so float64 cannot hold it exactly; allowed: int64 values from -{exact} to {exact}.");
                break;
        }
    }

    /// <summary>Every value as float64 (a copy): small arrays only, such as labels or targets to check.</summary>
    public double[] ToDoubles()
    {
        var values = new double[(long)Rows * Columns];
        Read<double>(0, values);
        return values;
    }
}

/// <summary>
/// One data set's rows read in place from its stored arrays: inputs (N, ...), each row flattened, and
/// targets that are class labels (N), read as one-hot rows of <see cref="OutputSize"/>, or rows (N, D_out).
/// A validation split picks its rows from it as a view (<see cref="ValidationSplit"/>).
/// </summary>
public sealed class StoredSet(StoredArray inputs, StoredArray targets, int outputSize) : ISampleRows
{
    private readonly bool _labels = targets.Shape.Length == 1;

    public int Count => inputs.Rows;
    public int InputSize => inputs.Columns;
    public int OutputSize => outputSize;

    public void ReadInputs<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> =>
        inputs.Read((long)row * inputs.Columns, to[..inputs.Columns]);

    public InputEncoding InputEncoding => inputs.Encoding;

    public void ReadEncodedInputs(int row, Span<byte> to) => inputs.ReadEncoded((long)row * inputs.Columns, inputs.Columns, to);

    public void ReadTargets<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!_labels)
        {
            targets.Read((long)row * outputSize, to[..outputSize]);
            return;
        }
        // A label was checked to be a class of the model when the files were opened (Labels.RequireClass).
        Span<double> label = stackalloc double[1];
        targets.Read<double>(row, label);
        to[..outputSize].Clear();
        to[(int)label[0]] = T.One;
    }
}
