using System.Runtime.InteropServices;
using Trainer.Core.Memory;

namespace Trainer.Abstractions;

/// <summary>
/// A flat float64 or float32 tensor on the wire, carried as raw little-endian bytes.
/// </summary>
/// <remarks>
/// The payload carries no element type: both ends know it from the job's spec
/// (<c>TrainingSpec.Precision</c>), which rides in every request. Receivers check the length
/// against the model's layout (<see cref="ValuesOf{T}"/>).
/// </remarks>
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

    /// <summary>A read-only view of the bytes as float32 values, without copying.</summary>
    public ReadOnlySpan<float> ValuesSingle => MemoryMarshal.Cast<byte, float>(Bytes);

    /// <summary>
    /// The values as T, checked to hold exactly <paramref name="expected"/> of them: a payload of
    /// the other precision (or another model) fails here with a clear message.
    /// </summary>
    public ReadOnlySpan<T> ValuesOf<T>(int expected, string what) where T : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (Bytes.Length != (long)expected * size)
            throw new InvalidOperationException(
                $"{what} has {Bytes.Length} bytes, expected {expected} {typeof(T).Name} values ({(long)expected * size} bytes); do both ends agree on the job's precision?");
        return MemoryMarshal.Cast<byte, T>(Bytes);
    }

    /// <summary>Copies <paramref name="values"/> into a new payload.</summary>
    public static TensorPayload From(ReadOnlySpan<double> values) =>
        new(MemoryMarshal.AsBytes(values).ToArray());

    /// <summary>Copies float32 <paramref name="values"/> into a new payload.</summary>
    public static TensorPayload From(ReadOnlySpan<float> values) =>
        new(MemoryMarshal.AsBytes(values).ToArray());

    /// <summary>
    /// A new payload of <paramref name="count"/> T values and a view to write them through: the
    /// builder writes the values once, straight into the bytes that travel (no copy), and must not
    /// touch <paramref name="values"/> after the payload is sent or stored.
    /// </summary>
    public static TensorPayload Allocate<T>(int count, out Span<T> values) where T : unmanaged
    {
        var bytes = LargeArrays.NewUninitialized<byte>(checked(count * System.Runtime.CompilerServices.Unsafe.SizeOf<T>()));
        values = MemoryMarshal.Cast<byte, T>(bytes.AsSpan());
        return new TensorPayload(bytes);
    }

    public double[] ToArray() => Values.ToArray();
}
