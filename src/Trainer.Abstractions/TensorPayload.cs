using System.Runtime.InteropServices;

namespace Trainer.Abstractions;

/// <summary>
/// A flat float64 tensor on the wire, carried as raw little-endian bytes.
/// </summary>
/// <remarks>
/// NOTE: Orleans encodes <c>double[]</c> element by element (a field header per value); a
/// <c>byte[]</c> is block-copied. Sealed + [Immutable] also stops Orleans deep-copying it on
/// same-silo calls, so never mutate <see cref="Bytes"/> after the payload is built.
/// </remarks>
[GenerateSerializer, Immutable, Alias("trainer.tensor")]
public sealed record TensorPayload([property: Id(0)] byte[] Bytes)
{
    public static TensorPayload Empty { get; } = new([]);

    /// <summary>Number of float64 values.</summary>
    public int Length => Bytes.Length / sizeof(double);

    /// <summary>A read-only view of the values, without copying.</summary>
    public ReadOnlySpan<double> Values => MemoryMarshal.Cast<byte, double>(Bytes);

    /// <summary>Copies <paramref name="values"/> into a new payload.</summary>
    public static TensorPayload From(ReadOnlySpan<double> values) =>
        new(MemoryMarshal.AsBytes(values).ToArray());

    public double[] ToArray() => Values.ToArray();
}
