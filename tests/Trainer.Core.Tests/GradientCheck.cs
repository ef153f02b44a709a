namespace Trainer.Core.Tests;

/// <summary>Central finite differences, the reference every analytic gradient is checked against.</summary>
internal static class GradientCheck
{
    /// <summary>d f / d p_i ≈ (f(p + h e_i) - f(p - h e_i)) / 2h for the given indices.</summary>
    public static double[] Numeric(Func<double[], double> f, double[] p, IReadOnlyList<int> indices, double h = 1e-6)
    {
        var result = new double[indices.Count];
        for (int j = 0; j < indices.Count; j++)
        {
            int i = indices[j];
            double saved = p[i];
            p[i] = saved + h;
            double plus = f(p);
            p[i] = saved - h;
            double minus = f(p);
            p[i] = saved;
            result[j] = (plus - minus) / (2 * h);
        }
        return result;
    }

    /// <summary>max |a - b| / max(|a|, |b|, floor), the usual relative error of a gradient check.</summary>
    public static double RelativeError(double a, double b, double floor = 1e-8) =>
        Math.Abs(a - b) / Math.Max(Math.Max(Math.Abs(a), Math.Abs(b)), floor);
}
