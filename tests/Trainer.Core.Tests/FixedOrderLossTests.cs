using Trainer.Core.Autograd;
using Tensor = Trainer.Core.Autograd.Tensor;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// A job's losses must not follow the CPU's vector width: TensorPrimitives' sums and dot products add
/// in 8 lanes with AVX-512 and 4 with AVX2, so silos on the two kinds of CPU printed losses that
/// differed in their last bits. The losses are sums in one fixed, sequential order (<see cref="FixedOrder"/>).
/// The data below tells the orders apart: summed as 4 or 8 lanes would sum it, it gives other bits.
/// </summary>
public sealed class FixedOrderLossTests
{
    [Fact]
    public void TheSseLoss_IsTheSequentialSumOfSquaredErrors_BitForBit_InBothPrecisions()
    {
        var spec = new ModelSpec([30, 20, 10], Activation.Sigmoid, LossKind.Sse, bias: false);
        int b = 256;
        var (p, x, y) = Draw(spec, b, seed: 3);

        double loss = new Mlp(spec, new ManagedBlas()).LossAndGradient(p, x, y, b, new double[spec.ParameterCount()]);
        var z = new double[b * 10];
        new Mlp(spec, new ManagedBlas()).Outputs(p, x, b, z);
        var diff = z.Zip(y, (a, t) => a - t).ToArray();
        double sequential = 0;
        foreach (var d in diff) sequential += d * d;

        Assert.Equal(sequential, loss);
        Assert.All(new[] { 4, 8 }, lanes => Assert.NotEqual(sequential, InLanes([.. diff.Select(d => d * d)], lanes)));

        // float32: the differences are float, their squares and sum double, in the same order.
        float loss32 = (float)new Mlp<float>(spec, new ManagedBlas()).LossAndGradient(Precisions.Narrow(p), Precisions.Narrow(x), Precisions.Narrow(y), b, new float[spec.ParameterCount()]);
        var z32 = new float[b * 10];
        new Mlp<float>(spec, new ManagedBlas()).Outputs(Precisions.Narrow(p), Precisions.Narrow(x), b, z32);
        double sequential32 = 0;
        for (int i = 0; i < z32.Length; i++)
        {
            double d = z32[i] - (float)y[i];
            sequential32 += d * d;
        }
        Assert.Equal((float)sequential32, loss32);
    }

    [Fact]
    public void AnAutogradSum_AddsItsElementsInOrder_WholeAndRowByRow()
    {
        var rng = new Random(5);
        var data = Enumerable.Range(0, 64 * 10).Select(_ => rng.NextDouble() * 10 - 5).ToArray();
        double sequential = 0;
        foreach (var v in data) sequential += v;

        Assert.Equal(sequential, Tensor.FromValues(Shape.Matrix(64, 10), data).Sum().Item());
        Assert.All(new[] { 4, 8 }, lanes => Assert.NotEqual(sequential, InLanes(data, lanes)));

        var rows = Tensor.FromValues(Shape.Matrix(64, 10), data).SumTo(Shape.Matrix(64, 1)).ToArray();
        for (int r = 0; r < 64; r++)
        {
            double row = 0;
            for (int c = 0; c < 10; c++) row += data[r * 10 + c];
            Assert.Equal(row, rows[r]);
        }
    }

    /// <summary>
    /// <paramref name="values"/> summed as a vectorized sum of <paramref name="lanes"/> lanes adds them: lane j
    /// takes values j, j + lanes, ..., then the lanes are added. Not TensorPrimitives itself, whose order differs
    /// between CPUs (and, with some data, matches the sequential sum's bits on one of them).
    /// </summary>
    private static double InLanes(double[] values, int lanes)
    {
        var sums = new double[lanes];
        for (int i = 0; i < values.Length; i++) sums[i % lanes] += values[i];
        return FixedOrder.Sum(sums);
    }

    private static (double[] P, double[] X, double[] Y) Draw(ModelSpec spec, int b, int seed)
    {
        var rng = new Random(seed);
        double[] Fill(long n, double scale) => [.. Enumerable.Range(0, (int)n).Select(_ => (rng.NextDouble() * 2 - 1) * scale)];
        return (Fill(spec.ParameterCount(), 0.5), Fill(b * spec.InputSize, 1), Fill(b * spec.OutputSize, 1));
    }
}
