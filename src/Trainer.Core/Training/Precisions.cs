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
}
