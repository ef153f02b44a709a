namespace Trainer.Core.Data;

/// <summary>
/// How a set of rows holds its inputs, so that whoever carries them elsewhere (an upload) carries them
/// as held and the reader there converts them exactly as the rows themselves do (<see cref="StoredArray"/>):
/// float64; float32 (a float32 file's values, which stay float32 in a float32 job and widen exactly in a
/// float64 one); or unsigned bytes with the value of each byte (IDX pixels, <see cref="Idx.ByteValues"/>).
/// Rows held any other way (integers of other widths, anything computed) are carried as float64 values.
/// </summary>
public sealed class InputEncoding : IEquatable<InputEncoding>
{
    private readonly double[]? _byteValues;

    private InputEncoding(StoredType type, double[]? byteValues) => (Type, _byteValues) = (type, byteValues);

    public static InputEncoding Float64 { get; } = new(StoredType.Float64, null);

    public static InputEncoding Float32 { get; } = new(StoredType.Float32, null);

    /// <summary>Unsigned bytes, byte b standing for <paramref name="byteValues"/>[b] (256 finite values).</summary>
    public static InputEncoding Bytes(ReadOnlySpan<double> byteValues)
    {
        if (byteValues.Length != 256) throw new ArgumentException($"A byte table has 256 values, not {byteValues.Length}.", nameof(byteValues));
        for (int b = 0; b < 256; b++)
            if (!double.IsFinite(byteValues[b])) throw new ArgumentException($"Byte {b} stands for {byteValues[b]}; every byte must stand for a finite value.", nameof(byteValues));
        return new(StoredType.UInt8, byteValues.ToArray());
    }

    /// <summary><see cref="StoredType.Float64"/>, <see cref="StoredType.Float32"/> or <see cref="StoredType.UInt8"/>.</summary>
    public StoredType Type { get; }

    /// <summary>What each byte stands for (<see cref="StoredType.UInt8"/>; empty otherwise).</summary>
    public ReadOnlySpan<double> ByteValues => _byteValues;

    /// <summary>Bytes per value.</summary>
    public int Width => StoredArray.WidthOf(Type);

    /// <summary>The inputs of <paramref name="rows"/> rows of <paramref name="columns"/> values held this way in <paramref name="bytes"/>, read as the rows they came from read them.</summary>
    public StoredArray Over(ReadOnlyMemory<byte> bytes, int rows, int columns) => new(bytes, Type, [rows, columns], _byteValues);

    public bool Equals(InputEncoding? other) => other is not null && Type == other.Type && ByteValues.SequenceEqual(other.ByteValues);

    public override bool Equals(object? obj) => Equals(obj as InputEncoding);

    public override int GetHashCode() => HashCode.Combine(Type, _byteValues is null ? 0 : _byteValues[255].GetHashCode());

    public override string ToString() => Type.ToString().ToLowerInvariant();
}
