using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// The float32 hand-derived MLP (<see cref="Mlp{T}"/> with T = float) against the float64 one on
/// the same (float-representable) inputs, and against finite differences of its own loss taken
/// through the float32 exchange (dense and factored plans).
/// </summary>
public class Float32GradientTests
{
    private const int Samples = 8;

    [Theory]
    [InlineData(Activation.Sigmoid, false, LossKind.Sse)]
    [InlineData(Activation.Tanh, true, LossKind.Sse)]
    [InlineData(Activation.Relu, true, LossKind.Sse)]
    [InlineData(Activation.Relu, true, LossKind.CrossEntropy)]
    [InlineData(Activation.Sigmoid, false, LossKind.CrossEntropy)]
    public void Float32Gradient_MatchesFloat64Gradient_ToAboutFourDigits(Activation activation, bool bias, LossKind loss)
    {
        var spec = new ModelSpec([30, 16, 8, 4], activation, loss, bias);
        var (p, x, y) = FloatProblem(spec, seed: 11);
        var g64 = new double[p.Length];
        var g32 = new float[p.Length];

        double l64 = new Mlp(spec, new ManagedBlas()).LossAndGradient(p, x, y, Samples, g64);
        double l32 = new Mlp<float>(spec, new ManagedBlas()).LossAndGradient(Precisions.Narrow(p), Precisions.Narrow(x), Precisions.Narrow(y), Samples, g32);

        // NOTE: judged relative to the largest gradient entry: entries near zero carry float32's
        // absolute rounding (~1e-7 of the large ones) and have no meaningful relative error of their own.
        double largest = g64.Max(Math.Abs);
        double worst = 0;
        for (int i = 0; i < p.Length; i++) worst = Math.Max(worst, Math.Abs(g32[i] - g64[i]) / largest);
        Assert.True(worst < 1e-4, $"float32 gradient differs from float64 by {worst:E2} of the largest entry");
        Assert.Equal(l64, l32, 1e-5 * l64);
    }

    [Theory]
    [InlineData(Activation.Sigmoid, LossKind.Sse, false, false)]
    [InlineData(Activation.Tanh, LossKind.Mse, true, false)]
    [InlineData(Activation.Relu, LossKind.Sse, true, false)]
    [InlineData(Activation.Sigmoid, LossKind.Sse, false, true)]
    [InlineData(Activation.Tanh, LossKind.Mse, true, true)]
    [InlineData(Activation.Relu, LossKind.Sse, true, true)]
    [InlineData(Activation.Relu, LossKind.CrossEntropy, true, false)]
    [InlineData(Activation.Relu, LossKind.CrossEntropy, false, true)]
    [InlineData(Activation.Sigmoid, LossKind.CrossEntropy, true, false)]
    public void Float32Gradient_MatchesFiniteDifferences_Loosely(Activation activation, LossKind loss, bool bias, bool factored)
    {
        var spec = new ModelSpec([4, 3, 2], activation, loss, bias);
        var (p, x, y) = FloatProblem(spec, seed: 5);
        var model = new Mlp<float>(spec, new ManagedBlas());
        float[] x32 = Precisions.Narrow(x), y32 = Precisions.Narrow(y);

        // Through the float32 exchange on one shard: dense (the plain gradient) or every layer factored.
        var plan = ExchangePlan.With(spec, Samples, factored, factored);
        var (_, gradient) = Exchange.Gradient(spec, model, plan, Precisions.Narrow(p), x32, y32, workers: 1);
        var analytic = Precisions.Widen(gradient);

        // NOTE: float32 forward passes round at ~6e-8 relative, so the step is large (h = 1e-3) and the
        // tolerance loose (1e-2): rounding noise is O(eps·loss/h) ≈ 1e-3; a larger h crosses ReLU's kink.
        double scale = loss.Scale(Samples, spec.OutputSize);
        var numeric = GradientCheck.Numeric(q => model.Loss(Precisions.Narrow(q), x32, y32, Samples) * scale, p, TestArrays.All(p.Length), h: 1e-3);
        double floor = 1e-2 * numeric.Max(Math.Abs);
        for (int i = 0; i < p.Length; i++)
        {
            double error = GradientCheck.RelativeError(analytic[i], numeric[i], floor);
            Assert.True(error < 1e-2, $"{spec}: d loss / d p[{i}] analytic {analytic[i]:R}, numeric {numeric[i]:R}, relative error {error:E2}");
        }
    }

    /// <summary>Parameters and data already rounded to float, so both precisions see the same inputs (one-hot targets for cross-entropy).</summary>
    private static (double[] P, double[] X, double[] Y) FloatProblem(ModelSpec spec, int seed)
    {
        var layout = ParameterLayout.For(spec);
        static double[] Round(double[] v) => Precisions.Widen(Precisions.Narrow(v));
        return (Round(TestArrays.Normal(layout.Count, seed, 0.5)),
            Round(TestArrays.Normal(Samples * spec.InputSize, seed + 100)),
            spec.Loss == LossKind.CrossEntropy ? TestArrays.OneHot(Samples, spec.OutputSize, seed + 200) : Round(TestArrays.Normal(Samples * spec.OutputSize, seed + 200)));
    }
}
