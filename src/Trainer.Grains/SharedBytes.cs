namespace Trainer.Grains;

/// <summary>
/// Bytes [<see cref="Offset"/>, Offset + <see cref="Count"/>) of an array that no one changes (a tensor's
/// payload), held by reference: what <see cref="BlockMemoryGrainStorage"/> keeps of a tensor's chunk
/// (<see cref="StoredTensors"/>). Within a silo it is passed as it is; to another silo only its bytes
/// travel, as one block, into an array of their own.
/// </summary>
[Immutable]
public sealed class SharedBytes
{
    public SharedBytes(byte[] array, int offset, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if ((long)offset + count > array.Length)
            throw new ArgumentOutOfRangeException(nameof(count), $"bytes [{offset}, {(long)offset + count}) are not within the array's {array.Length}.");
        (Array, Offset, Count) = (array, offset, count);
    }

    public byte[] Array { get; }
    public int Offset { get; }
    public int Count { get; }

    public ReadOnlySpan<byte> Span => Array.AsSpan(Offset, Count);

    /// <summary>The bytes in an array of their own size: the array itself when the slice is all of it, otherwise a copy.</summary>
    public byte[] ToArray() => Offset == 0 && Count == Array.Length ? Array : Span.ToArray();
}

/// <summary>What crosses the wire of a <see cref="SharedBytes"/>: its bytes alone, block-copied.</summary>
[GenerateSerializer, Alias("trainer.shared-bytes")]
public struct SharedBytesSurrogate
{
    [Id(0)] public byte[] Bytes;
}

[RegisterConverter]
public sealed class SharedBytesConverter : IConverter<SharedBytes, SharedBytesSurrogate>
{
    public SharedBytes ConvertFromSurrogate(in SharedBytesSurrogate surrogate) => new(surrogate.Bytes, 0, surrogate.Bytes.Length);

    public SharedBytesSurrogate ConvertToSurrogate(in SharedBytes value) => new() { Bytes = value.ToArray() };
}
