using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// The hand-derived backward pass of <see cref="Mlp"/> against central finite differences, taken
/// through the exchange as training takes it (shard packs, <see cref="UpdateBuilder{T}"/>,
/// <see cref="ReplicaUpdate{T}"/>): once with every layer dense (summed shard gradients) and once
/// with every layer factored (δ and activations, multiplied out by the replica).
/// </summary>
public class MlpGradientTests
{
    private const double Tolerance = 1e-6;
    private const int Samples = 5;

    public static TheoryData<Activation, LossKind, bool, bool> EveryActivationLossBiasAndPlan()
    {
        var data = new TheoryData<Activation, LossKind, bool, bool>();
        foreach (var activation in Enum.GetValues<Activation>())
            foreach (var loss in Enum.GetValues<LossKind>())
                foreach (var bias in new[] { false, true })
                    foreach (var factored in new[] { false, true })
                        data.Add(activation, loss, bias, factored);
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryActivationLossBiasAndPlan))]
    public void Gradient_MatchesFiniteDifferences_ForEveryActivationAndLoss(Activation activation, LossKind loss, bool bias, bool factored)
        => CheckEveryParameter(new ModelSpec([4, 3, 2], activation, loss, bias), factored, seed: 1);

    [Theory]
    [MemberData(nameof(EveryActivationLossBiasAndPlan))]
    public void Gradient_MatchesFiniteDifferences_ForThreeLayers(Activation activation, LossKind loss, bool bias, bool factored)
        => CheckEveryParameter(new ModelSpec([7, 5, 4, 3], activation, loss, bias), factored, seed: 2);

    [Fact]
    public void ModelGradient_IsTheSummedLoss_EvenWhenTheSpecSaysMse()
    {
        // The model always returns sums; MSE's scale is the exchange's job. Same data, SSE vs MSE spec: identical results.
        var sse = new ModelSpec([4, 3, 2], Activation.Tanh, LossKind.Sse);
        var mse = new ModelSpec([4, 3, 2], Activation.Tanh, LossKind.Mse);
        var (p, x, y) = Problem(sse, seed: 3);
        var gSse = new double[p.Length];
        var gMse = new double[p.Length];
        double lSse = new Mlp(sse, new ManagedBlas()).LossAndGradient(p, x, y, Samples, gSse);
        double lMse = new Mlp(mse, new ManagedBlas()).LossAndGradient(p, x, y, Samples, gMse);
        Assert.Equal(lSse, lMse);
        Assert.Equal(gSse, gMse);
        Assert.Equal(SummedLoss(sse, p, x, y), lSse, 1e-12);
    }

    private static void CheckEveryParameter(ModelSpec spec, bool factored, int seed)
    {
        var (p, x, y) = Problem(spec, seed);
        var model = new Mlp(spec, new ManagedBlas());
        if (spec.Activation == Activation.Relu) AssertAwayFromKink(spec, p, x);

        // Through the exchange, as training does: two shards (3 + 2 samples), their packs combined in
        // shard order, then the replica's gradient with the loss scale (1/(N·D_out) for MSE, 1/N for CE) applied once.
        var plan = factored
            ? ExchangePlan.With(spec, Samples, [.. Enumerable.Repeat(true, spec.LayerCount)])
            : ExchangePlan.For(spec, Samples, factorsAvailable: false);
        Assert.Equal(factored, plan.AnyFactored);
        var (loss, analytic) = Exchange.Gradient(spec, model, plan, p, x, y, workers: 2);

        double scale = spec.Loss.Scale(Samples, spec.OutputSize);
        Assert.Equal(SummedLoss(spec, p, x, y) * scale, loss, 1e-12 * loss);
        var numeric = GradientCheck.Numeric(q => model.Loss(q, x, y, Samples) * scale, p, TestArrays.All(p.Length), h: 1e-5);
        // NOTE: finite differences carry ~eps·loss/h ≈ 1e-10 absolute rounding error, so entries 1e3 times
        // smaller than the largest are judged against that floor rather than their own tiny size.
        double floor = 1e-3 * numeric.Max(Math.Abs);
        for (int i = 0; i < p.Length; i++)
        {
            double error = GradientCheck.RelativeError(analytic[i], numeric[i], floor);
            Assert.True(error < Tolerance, $"{spec} ({plan.Describe()}): d loss / d p[{i}] analytic {analytic[i]:R}, numeric {numeric[i]:R}, relative error {error:E2}");
        }
    }

    /// <summary>
    /// Small weights and inputs keep the loss O(1), so finite differences with h = 1e-6 are accurate to ~1e-9.
    /// Cross-entropy gets one-hot targets (class labels); the squared errors get N(0, 1) targets.
    /// </summary>
    internal static (double[] P, double[] X, double[] Y) Problem(ModelSpec spec, int seed)
    {
        var layout = ParameterLayout.For(spec);
        var p = TestArrays.Normal(layout.Count, seed, 0.5);
        var y = spec.Loss == LossKind.CrossEntropy ? TestArrays.OneHot(Samples, spec.OutputSize, seed + 200) : TestArrays.Normal(Samples * spec.OutputSize, seed + 200);
        return (p, TestArrays.Normal(Samples * spec.InputSize, seed + 100), y);
    }

    /// <summary>
    /// Independent forward pass (plain loops, tutorial formulas) and summed loss: squared error, or
    /// for cross-entropy Σ_o y_o (lse - a_o) with lse = m + log Σ_o exp(a_o - m).
    /// </summary>
    internal static double SummedLoss(ModelSpec spec, double[] p, double[] x, double[] y)
    {
        var layout = ParameterLayout.For(spec);
        int samples = x.Length / spec.InputSize;
        double total = 0;
        for (int s = 0; s < samples; s++)
        {
            double[] a = x[(s * spec.InputSize)..((s + 1) * spec.InputSize)];
            for (int l = 1; l <= spec.LayerCount; l++)
            {
                var w = layout.Weight(l);
                var b = layout.Bias(l);
                var z = new double[w.Rows];
                for (int r = 0; r < w.Rows; r++)
                {
                    double sum = b is null ? 0 : p[b.Offset + r];
                    for (int c = 0; c < w.Cols; c++) sum += p[w.Offset + r * w.Cols + c] * a[c];
                    z[r] = l == spec.LayerCount ? sum : spec.Activation switch
                    {
                        Activation.Sigmoid => 1 / (1 + Math.Exp(-sum)),
                        Activation.Tanh => Math.Tanh(sum),
                        _ => Math.Max(sum, 0),
                    };
                }
                a = z;
            }
            var target = y.AsSpan(s * spec.OutputSize, spec.OutputSize);
            if (spec.Loss == LossKind.CrossEntropy)
            {
                double m = a.Max(), lse = m + Math.Log(a.Sum(v => Math.Exp(v - m)));
                for (int o = 0; o < spec.OutputSize; o++) total += target[o] * (lse - a[o]);
            }
            else
            {
                for (int o = 0; o < spec.OutputSize; o++) total += (a[o] - target[o]) * (a[o] - target[o]);
            }
        }
        return total;
    }

    /// <summary>Relu has no derivative at 0: fail loudly if a finite-difference step could cross it.</summary>
    private static void AssertAwayFromKink(ModelSpec spec, double[] p, double[] x)
    {
        var layout = ParameterLayout.For(spec);
        int samples = x.Length / spec.InputSize;
        for (int s = 0; s < samples; s++)
        {
            double[] a = x[(s * spec.InputSize)..((s + 1) * spec.InputSize)];
            for (int l = 1; l < spec.LayerCount; l++)
            {
                var w = layout.Weight(l);
                var b = layout.Bias(l);
                var next = new double[w.Rows];
                for (int r = 0; r < w.Rows; r++)
                {
                    double z = b is null ? 0 : p[b.Offset + r];
                    for (int c = 0; c < w.Cols; c++) z += p[w.Offset + r * w.Cols + c] * a[c];
                    Assert.True(Math.Abs(z) > 1e-3, $"pre-activation {z:R} of layer {l} is too close to relu's kink; pick another seed");
                    next[r] = Math.Max(z, 0);
                }
                a = next;
            }
        }
    }
}
