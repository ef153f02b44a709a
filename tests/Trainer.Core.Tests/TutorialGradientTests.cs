using Trainer.Core.Linalg;
using Trainer.Core.Models;

namespace Trainer.Core.Tests;

/// <summary>
/// The tutorial writes g_w2 = g_y·hᵀ (pre-activation) and says it "descends better". Finite
/// differences say it is not the gradient; g_y·aᵀ (post-activation, what Mlp uses) is.
/// </summary>
public class TutorialGradientTests
{
    // Tutorial layout for a tiny seed-shaped model: x (D_in, B) one sample per column.
    private const int DIn = 3, H = 2, DOut = 2, B = 4;
    private static readonly ModelSpec Spec = new([DIn, H, DOut]);

    [Fact]
    public void TutorialW2Gradient_FailsFiniteDifferenceCheck()
    {
        var (numeric, ours, tutorial) = W2Gradients();
        double worstTutorial = 0;
        for (int i = 0; i < numeric.Length; i++)
            worstTutorial = Math.Max(worstTutorial, GradientCheck.RelativeError(tutorial[i], numeric[i]));
        Assert.True(worstTutorial > 0.1, $"the tutorial's g_y·hᵀ matched finite differences (worst relative error {worstTutorial:E2}); the check has no power");
        for (int i = 0; i < numeric.Length; i++)
            Assert.True(GradientCheck.RelativeError(ours[i], numeric[i]) < 1e-6, $"g_y·aᵀ [{i}] = {ours[i]:R}, finite differences {numeric[i]:R}");
    }

    [Fact]
    public void MlpW2Gradient_IsGyTimesActivationTransposed()
    {
        var (w1, w2, xCols, yCols) = Tiny();
        var (_, ours, _) = W2Gradients();
        var p = Parameters(w1, w2);
        var g = new double[p.Length];
        new Mlp(Spec, new ManagedBlas()).LossAndGradient(p, Transpose(xCols, DIn, B), Transpose(yCols, DOut, B), B, g);
        var w2View = ParameterLayout.For(Spec).Weight(2);
        Assert.True(TestArrays.MaxRelativeDifference(w2View.Of(g), ours) < 1e-13);
    }

    /// <summary>Finite differences, g_y·aᵀ and the tutorial's g_y·hᵀ for w2, all (D_out x H) row-major.</summary>
    private static (double[] Numeric, double[] Ours, double[] Tutorial) W2Gradients()
    {
        var (w1, w2, x, y) = Tiny();
        // Forward, as in SEED.md: h = w1·x, a = sigmoid(h), y_pred = w2·a, g_y = 2 (y_pred - y).
        var h = new double[H * B];
        var a = new double[H * B];
        for (int i = 0; i < H; i++)
            for (int s = 0; s < B; s++)
            {
                double sum = 0;
                for (int j = 0; j < DIn; j++) sum += w1[i * DIn + j] * x[j * B + s];
                h[i * B + s] = sum;
                a[i * B + s] = 1 / (1 + Math.Exp(-sum));
            }
        var gy = new double[DOut * B];
        for (int o = 0; o < DOut; o++)
            for (int s = 0; s < B; s++)
            {
                double pred = 0;
                for (int i = 0; i < H; i++) pred += w2[o * H + i] * a[i * B + s];
                gy[o * B + s] = 2 * (pred - y[o * B + s]);
            }
        double[] ours = new double[DOut * H], tutorial = new double[DOut * H];
        for (int o = 0; o < DOut; o++)
            for (int i = 0; i < H; i++)
                for (int s = 0; s < B; s++)
                {
                    ours[o * H + i] += gy[o * B + s] * a[i * B + s];
                    tutorial[o * H + i] += gy[o * B + s] * h[i * B + s];
                }

        var p = Parameters(w1, w2);
        var model = new Mlp(Spec, new ManagedBlas());
        double[] xRows = Transpose(x, DIn, B), yRows = Transpose(y, DOut, B);
        var w2View = ParameterLayout.For(Spec).Weight(2);
        var numeric = GradientCheck.Numeric(q => model.Loss(q, xRows, yRows, B), p,
            [.. Enumerable.Range(w2View.Offset, w2View.Length)]);
        return (numeric, ours, tutorial);
    }

    private static (double[] W1, double[] W2, double[] X, double[] Y) Tiny() =>
        (TestArrays.Normal(H * DIn, 11), TestArrays.Normal(DOut * H, 12), TestArrays.Normal(DIn * B, 13), TestArrays.Normal(DOut * B, 14));

    private static double[] Parameters(double[] w1, double[] w2) => [.. w1, .. w2];

    private static double[] Transpose(double[] m, int rows, int cols)
    {
        var t = new double[m.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c];
        return t;
    }
}
