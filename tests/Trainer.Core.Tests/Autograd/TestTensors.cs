namespace Trainer.Core.Tests.Autograd;

using Trainer.Core.Autograd;

/// <summary>Seeded random inputs and a relative-closeness assertion shared by the autograd tests.</summary>
internal static class TestTensors
{
    /// <summary>How an op's inputs must be drawn to stay where the op is smooth.</summary>
    public enum Domain { Any, Positive, AwayFromZero }

    /// <summary>Standard normal values (Box-Muller on a seeded System.Random), moved into <paramref name="domain"/>.</summary>
    public static double[] Normals(int count, int seed, Domain domain = Domain.Any)
    {
        var random = new Random(seed);
        var values = new double[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            double z = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            values[i] = domain switch
            {
                Domain.Positive => Math.Abs(z) + 0.5,
                Domain.AwayFromZero => z + (z >= 0 ? 0.2 : -0.2),   // relu's kink stays out of the finite-difference stencil
                _ => z,
            };
        }
        return values;
    }

    public static Tensor Random(Shape shape, int seed, Domain domain = Domain.Any, bool requiresGrad = false) =>
        Tensor.FromValues(shape, Normals(shape.Size, seed, domain), requiresGrad);

    /// <summary>max_i |actual_i - expected_i| / max(max_i |expected_i|, floor) &lt;= tolerance: a scale-aware check for whole gradients.</summary>
    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double tolerance, string what, double floor = 1e-8)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: expected {expected.Length} values, got {actual.Length}.");
        double scale = floor, worst = 0;
        int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            double diff = Math.Abs(expected[i] - actual[i]);
            if (!(diff <= worst)) { worst = diff; at = i; }
        }
        Assert.True(worst / scale <= tolerance,
            $"{what}: relative error {worst / scale:E3} > {tolerance:E1} at element {at} (expected {expected[Math.Max(at, 0)]:R}, got {actual[Math.Max(at, 0)]:R}).");
    }
}
