namespace Trainer.Core.Tests;

/// <summary>Seeded test inputs and the array comparisons the tests share.</summary>
internal static class TestArrays
{
    /// <summary>N(0, std^2) values from a fresh seeded stream (Box-Muller), independent of the core's RNG.</summary>
    public static double[] Normal(int count, int seed, double std = 1.0)
    {
        var random = new Random(seed);
        var values = new double[count];
        for (int i = 0; i < count; i++)
        {
            double u = 1.0 - random.NextDouble(), v = random.NextDouble();
            values[i] = std * Math.Sqrt(-2.0 * Math.Log(u)) * Math.Cos(2 * Math.PI * v);
        }
        return values;
    }

    /// <summary>One-hot rows (rows x classes) of seeded uniform class labels, the targets of a cross-entropy test.</summary>
    public static double[] OneHot(int rows, int classes, int seed)
    {
        var random = new Random(seed);
        var values = new double[rows * classes];
        for (int r = 0; r < rows; r++) values[r * classes + random.Next(classes)] = 1.0;
        return values;
    }

    /// <summary>max_i |a_i - b_i| / max_i |b_i|: the norm-wise relative difference, robust to entries near zero.</summary>
    public static double MaxRelativeDifference(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return scale == 0 ? diff : diff / scale;
    }

    public static double RelativeDifference(double actual, double expected) =>
        Math.Abs(actual - expected) / Math.Max(Math.Abs(expected), double.Epsilon);

    /// <summary>Indices 0..count-1, for gradient checks that cover every parameter of a small model.</summary>
    public static int[] All(int count) => [.. Enumerable.Range(0, count)];
}
