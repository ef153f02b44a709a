using System.Numerics;

namespace Trainer.Core.Linalg;

/// <summary>
/// Sums whose bits depend on nothing but their terms: one sequential pass, in double. Written by hand
/// because TensorPrimitives.Sum and Dot add in the order of the CPU's vector width (8 lanes of doubles
/// with AVX-512, 4 with AVX2), so a job's losses would differ in their last bits between silos on the
/// two kinds of CPU. Every sum here is over a batch's outputs or a small tensor, where one pass costs
/// far less than the products around it.
/// </summary>
public static class FixedOrder
{
    /// <summary>x[0] + x[1] + ... in that order.</summary>
    public static double Sum(ReadOnlySpan<double> values)
    {
        double sum = 0;
        foreach (var v in values) sum += v;
        return sum;
    }

    /// <summary>x[0]² + x[1]² + ... in that order, each square and sum in double (a float's square widened first).</summary>
    public static double SumOfSquares<T>(ReadOnlySpan<T> values) where T : IFloatingPointIeee754<T>
    {
        double sum = 0;
        foreach (var v in values)
        {
            double d = double.CreateTruncating(v);
            sum += d * d;
        }
        return sum;
    }
}
