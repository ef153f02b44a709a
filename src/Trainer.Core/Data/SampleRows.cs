using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Trainer.Core.Training;

namespace Trainer.Core.Data;

/// <summary>
/// A job's rows wherever they are held (arrays in memory, <see cref="Dataset"/>; files as stored,
/// <see cref="StoredSet"/>), read a row at a time into the precision the job runs in. Row r's
/// inputs are <see cref="InputSize"/> values, its targets <see cref="OutputSize"/>. A worker reads
/// only the rows of its micro-shards of each batch (<see cref="BatchSchedule.Gather{T}(int, ISampleRows, int, Span{T}, Span{T})"/>).
/// </summary>
/// <remarks>Reads must be safe from several threads at once: the rows never change.</remarks>
public interface ISampleRows
{
    int Count { get; }
    int InputSize { get; }
    int OutputSize { get; }

    /// <summary>Row <paramref name="row"/>'s inputs into <paramref name="to"/> (<see cref="InputSize"/> values).</summary>
    void ReadInputs<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>Row <paramref name="row"/>'s targets into <paramref name="to"/> (<see cref="OutputSize"/> values).</summary>
    void ReadTargets<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>
    /// How the rows hold their inputs, for whoever carries them elsewhere (an upload): rows read from a file
    /// say how it stores them, so the reader at the other end converts them as these rows do. Float64 unless said.
    /// </summary>
    InputEncoding InputEncoding => InputEncoding.Float64;

    /// <summary>Row <paramref name="row"/>'s inputs as <see cref="InputEncoding"/> holds them (<see cref="InputSize"/> values of its width) into <paramref name="to"/>.</summary>
    void ReadEncodedInputs(int row, Span<byte> to) => ReadInputs(row, MemoryMarshal.Cast<byte, double>(to));
}

/// <summary>Views and copies of <see cref="ISampleRows"/>.</summary>
public static class SampleRows
{
    /// <summary>Rows [<paramref name="first"/>, first + <paramref name="count"/>) of <paramref name="rows"/>, as rows 0.. of a view (nothing is copied).</summary>
    public static ISampleRows Range(this ISampleRows rows, int first, int count)
    {
        if (first < 0 || count <= 0 || first + count > rows.Count)
            throw new ArgumentOutOfRangeException(nameof(first), $"rows [{first}, {first + count}) are outside the {rows.Count} rows.");
        return first == 0 && count == rows.Count ? rows : new RowRange(rows, first, count);
    }

    /// <summary>Rows <paramref name="picked"/> of <paramref name="rows"/> (indices, in the order given), as rows 0.. of a view (nothing is copied).</summary>
    public static ISampleRows Pick(this ISampleRows rows, int[] picked)
    {
        foreach (int row in picked)
            if ((uint)row >= (uint)rows.Count) throw new ArgumentOutOfRangeException(nameof(picked), $"row {row} is outside the {rows.Count} rows.");
        return new PickedRows(rows, picked);
    }

    /// <summary>
    /// Every row's inputs and targets in precision T, row-major: a float64 <see cref="Dataset"/>'s own
    /// arrays for T = double (no copy), otherwise a copy (float32 narrowed as <see cref="Precisions.Narrow(ReadOnlySpan{double})"/> does).
    /// </summary>
    public static (T[] X, T[] Y) ToArrays<T>(this ISampleRows rows) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (rows is Dataset data && typeof(T) == typeof(double)) return ((T[])(object)data.X, (T[])(object)data.Y);
        if (rows is Float32Rows single && typeof(T) == typeof(float)) return ((T[])(object)single.X, (T[])(object)single.Y);
        var x = new T[(long)rows.Count * rows.InputSize];
        var y = new T[(long)rows.Count * rows.OutputSize];
        for (int r = 0; r < rows.Count; r++)
        {
            rows.ReadInputs<T>(r, x.AsSpan(r * rows.InputSize, rows.InputSize));
            rows.ReadTargets<T>(r, y.AsSpan(r * rows.OutputSize, rows.OutputSize));
        }
        return (x, y);
    }

    /// <summary>Every row's targets, float64, row-major (a <see cref="Dataset"/>'s own array): small next to the inputs.</summary>
    public static double[] Targets(this ISampleRows rows)
    {
        if (rows is Dataset data) return data.Y;
        var y = new double[(long)rows.Count * rows.OutputSize];
        for (int r = 0; r < rows.Count; r++) rows.ReadTargets<double>(r, y.AsSpan(r * rows.OutputSize, rows.OutputSize));
        return y;
    }

    /// <summary>The rows as a float64 <see cref="Dataset"/> (itself when it is one).</summary>
    public static Dataset ToDataset(this ISampleRows rows)
    {
        if (rows is Dataset data) return data;
        var (x, y) = rows.ToArrays<double>();
        return new Dataset(x, y, rows.Count, rows.InputSize, rows.OutputSize);
    }

    /// <summary>A float64 value in precision T: itself, or rounded to the nearest float32 (as a cast does).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T FromDouble<T>(double value) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) return Unsafe.As<double, T>(ref value);
        float single = (float)value;
        return Unsafe.As<float, T>(ref single);
    }

    private sealed class RowRange(ISampleRows rows, int first, int count) : ISampleRows
    {
        public int Count => count;
        public int InputSize => rows.InputSize;
        public int OutputSize => rows.OutputSize;

        public void ReadInputs<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> => rows.ReadInputs(Checked(row) + first, to);

        public void ReadTargets<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> => rows.ReadTargets(Checked(row) + first, to);

        public InputEncoding InputEncoding => rows.InputEncoding;

        public void ReadEncodedInputs(int row, Span<byte> to) => rows.ReadEncodedInputs(Checked(row) + first, to);

        private int Checked(int row) => (uint)row < (uint)count ? row : throw new ArgumentOutOfRangeException(nameof(row), $"row {row} of {count}.");
    }

    private sealed class PickedRows(ISampleRows rows, int[] picked) : ISampleRows
    {
        public int Count => picked.Length;
        public int InputSize => rows.InputSize;
        public int OutputSize => rows.OutputSize;

        public void ReadInputs<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> => rows.ReadInputs(picked[row], to);

        public void ReadTargets<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> => rows.ReadTargets(picked[row], to);

        public InputEncoding InputEncoding => rows.InputEncoding;

        public void ReadEncodedInputs(int row, Span<byte> to) => rows.ReadEncodedInputs(picked[row], to);
    }
}

/// <summary>Several sets' rows one after another: a job's training rows, then its validation rows, then its test rows.</summary>
public sealed class ConcatenatedRows : ISampleRows
{
    private readonly ISampleRows[] _parts;

    public ConcatenatedRows(params ISampleRows[] parts)
    {
        if (parts.Length == 0) throw new ArgumentException("At least one set of rows is needed.", nameof(parts));
        if (parts.Any(p => p.InputSize != parts[0].InputSize || p.OutputSize != parts[0].OutputSize))
            throw new ArgumentException("Every set must have the same inputs and targets per row.", nameof(parts));
        _parts = parts;
        Count = parts.Sum(p => p.Count);
        // Sets held alike are carried as held; sets held differently (a float32 training file beside a float64
        // test file) are carried as float64, which every encoding converts to exactly as it reads.
        InputEncoding = parts.All(p => p.InputEncoding.Equals(parts[0].InputEncoding)) ? parts[0].InputEncoding : InputEncoding.Float64;
    }

    public InputEncoding InputEncoding { get; }

    public void ReadEncodedInputs(int row, Span<byte> to)
    {
        var part = Find(ref row);
        if (part.InputEncoding.Equals(InputEncoding)) part.ReadEncodedInputs(row, to);
        else part.ReadInputs(row, MemoryMarshal.Cast<byte, double>(to));
    }

    public int Count { get; }
    public int InputSize => _parts[0].InputSize;
    public int OutputSize => _parts[0].OutputSize;

    public void ReadInputs<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var part = Find(ref row);
        part.ReadInputs(row, to);
    }

    public void ReadTargets<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var part = Find(ref row);
        part.ReadTargets(row, to);
    }

    private ISampleRows Find(ref int row)
    {
        foreach (var part in _parts)
        {
            if ((uint)row < (uint)part.Count) return part;
            row -= part.Count;
        }
        throw new ArgumentOutOfRangeException(nameof(row), $"the rows hold {Count}.");
    }
}

/// <summary>
/// Rows held in memory as float32, narrowed once from float64 rows, or drawn straight into float32: a float32
/// job's workers' synthetic data (<see cref="Synthetic.RowsAsFloat32"/>).
/// </summary>
public sealed class Float32Rows : ISampleRows
{
    private readonly float[] _x, _y;

    private Float32Rows(float[] x, float[] y, int count, int inputSize, int outputSize) =>
        (_x, _y, Count, InputSize, OutputSize) = (x, y, count, inputSize, outputSize);

    /// <summary>Rows over <paramref name="x"/> and <paramref name="y"/> (row-major, exactly <paramref name="count"/> rows; not copied).</summary>
    internal static Float32Rows Of(float[] x, float[] y, int count, int inputSize, int outputSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (x.Length != (long)count * inputSize || y.Length != (long)count * outputSize)
            throw new ArgumentException($"{count} rows are {(long)count * inputSize} inputs and {(long)count * outputSize} targets; {x.Length} and {y.Length} were given.", nameof(count));
        return new Float32Rows(x, y, count, inputSize, outputSize);
    }

    /// <summary>The inputs, row-major (the rows' own array: <see cref="SampleRows.ToArrays"/> hands it out uncopied, as a float64 <see cref="Dataset"/>'s).</summary>
    internal float[] X => _x;

    internal float[] Y => _y;

    public Float32Rows(Dataset data) : this(data.X, data.Y, data.Count, data.InputSize, data.OutputSize)
    {
    }

    /// <summary>The first <paramref name="count"/> rows of float64 inputs <paramref name="x"/> and targets <paramref name="y"/> (row-major), narrowed.</summary>
    public Float32Rows(ReadOnlySpan<double> x, ReadOnlySpan<double> y, int count, int inputSize, int outputSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (x.Length < (long)count * inputSize || y.Length < (long)count * outputSize)
            throw new ArgumentException($"{count} rows need {(long)count * inputSize} inputs and {(long)count * outputSize} targets; {x.Length} and {y.Length} were given.", nameof(count));
        _x = Precisions.Narrow(x[..(count * inputSize)]);
        _y = Precisions.Narrow(y[..(count * outputSize)]);
        (Count, InputSize, OutputSize) = (count, inputSize, outputSize);
    }

    public int Count { get; }
    public int InputSize { get; }
    public int OutputSize { get; }

    public void ReadInputs<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> => Read(_x, row, InputSize, to);

    public void ReadTargets<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> => Read(_y, row, OutputSize, to);

    public InputEncoding InputEncoding => InputEncoding.Float32;

    public void ReadEncodedInputs(int row, Span<byte> to) => MemoryMarshal.AsBytes(_x.AsSpan(row * InputSize, InputSize)).CopyTo(to);

    private static void Read<T>(float[] values, int row, int width, Span<T> to) where T : unmanaged
    {
        var from = values.AsSpan(row * width, width);
        if (typeof(T) == typeof(float)) from.CopyTo(System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(to));
        else Precisions.Widen(from, System.Runtime.InteropServices.MemoryMarshal.Cast<T, double>(to));
    }
}
