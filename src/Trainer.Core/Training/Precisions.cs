namespace Trainer.Core.Training;

/// <summary>Parsing and the float64 ⇄ float32 conversions at the edges of a float32 job.</summary>
/// <remarks>
/// A float32 job narrows its float64 inputs (data, initial parameters) once, with IEEE
/// round-to-nearest, element by element, so a worker narrowing its shard gets the same bits as the
/// single-process trainer narrowing the whole batch. Widening float32 to float64 is exact, so a
/// float32 job's stored (float64) parameters hold its float32 values exactly.
/// </remarks>
public static class Precisions
{
    public static Precision Parse(string? value, string field = "precision") => value?.Trim().ToLowerInvariant() switch
    {
        "float64" => Precision.Float64,
        "float32" => Precision.Float32,
        _ => throw new SpecException(field, value, "allowed: float64, float32"),
    };

    public static string Name(this Precision precision) => precision.ToString().ToLowerInvariant();

    /// <summary>Bytes per value.</summary>
    public static int Size(this Precision precision) => precision == Precision.Float32 ? sizeof(float) : sizeof(double);

    public static float[] Narrow(ReadOnlySpan<double> values)
    {
        var result = new float[values.Length];
        Narrow(values, result);
        return result;
    }

    public static void Narrow(ReadOnlySpan<double> values, Span<float> destination)
    {
        if (destination.Length != values.Length)
            throw new ArgumentException($"destination has {destination.Length} elements, the source {values.Length}.", nameof(destination));
        for (int i = 0; i < values.Length; i++) destination[i] = (float)values[i];
    }

    public static double[] Widen(ReadOnlySpan<float> values)
    {
        var result = new double[values.Length];
        Widen(values, result);
        return result;
    }

    public static void Widen(ReadOnlySpan<float> values, Span<double> destination)
    {
        if (destination.Length != values.Length)
            throw new ArgumentException($"destination has {destination.Length} elements, the source {values.Length}.", nameof(destination));
        for (int i = 0; i < values.Length; i++) destination[i] = values[i];
    }

    /// <summary>float64 values into precision T (double: copied; float: narrowed).</summary>
    public static void Narrow<T>(ReadOnlySpan<double> values, Span<T> destination) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) values.CopyTo(System.Runtime.InteropServices.MemoryMarshal.Cast<T, double>(destination));
        else if (typeof(T) == typeof(float)) Narrow(values, System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(destination));
        else throw new NotSupportedException($"Precision {typeof(T).Name}: only double and float are supported.");
    }

    /// <summary>Precision-T values into float64 (double: copied; float: widened, exactly).</summary>
    public static void Widen<T>(ReadOnlySpan<T> values, Span<double> destination) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) System.Runtime.InteropServices.MemoryMarshal.Cast<T, double>(values).CopyTo(destination);
        else if (typeof(T) == typeof(float)) Widen(System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(values), destination);
        else throw new NotSupportedException($"Precision {typeof(T).Name}: only double and float are supported.");
    }
}
