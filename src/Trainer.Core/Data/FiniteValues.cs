using System.Globalization;
using System.Numerics;
using System.Numerics.Tensors;

namespace Trainer.Core.Data;

/// <summary>The check that data holds only finite numbers, made once at load.</summary>
public static class FiniteValues
{
    /// <summary>
    /// Refuses the first NaN or infinity in <paramref name="values"/> (rows of <paramref name="columns"/>),
    /// naming <paramref name="source"/>, its row and column: one would make the loss NaN at step 1, and
    /// the job would only say that it diverged.
    /// </summary>
    public static void Require(ReadOnlySpan<double> values, int columns, string source) => Require<double>(values, columns, source);

    /// <summary>The same for float32 values (a float32 file read in place).</summary>
    public static void Require(ReadOnlySpan<float> values, int columns, string source) => Require<float>(values, columns, source);

    private static void Require<T>(ReadOnlySpan<T> values, int columns, string source) where T : IFloatingPointIeee754<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        // Vectorized fast path: the largest magnitude is NaN or infinite exactly when some value is.
        if (values.IsEmpty || T.IsFinite(TensorPrimitives.MaxMagnitude(values))) return;
        for (int i = 0; i < values.Length; i++)
            if (!T.IsFinite(values[i]))
                throw new DataValueException(string.Create(CultureInfo.InvariantCulture, $"{source}: row {i / columns}, column {i % columns} (counting from 0) is {Describe(double.CreateTruncating(values[i]))}; every value must be a finite number."));
    }

    private static string Describe(double value) => double.IsNaN(value) ? "NaN" : value > 0 ? "+infinity" : "-infinity";
}
