using Trainer.Core.Models;

namespace Trainer.Core.Tests;

/// <summary>
/// The softmax cross-entropy kernel on its own: its values where they are known in closed form, its
/// gradient against finite differences (for probability targets too), its stability where a naive
/// exp overflows, and rows whose bits do not depend on the rows beside them (the shard invariant).
/// </summary>
public class SoftmaxCrossEntropyTests
{
    [Fact]
    public void EqualLogits_GiveLogOfTheClassCount_AndSoftmaxMinusOneHot()
    {
        double[] z = [0.5, 0.5, 0.5, 0.5], y = [0, 0, 1, 0], delta = new double[4];

        double loss = SoftmaxCrossEntropy.Sum<double>(z, y, 1, 4, delta, computeDelta: true);

        Assert.Equal(Math.Log(4), loss, 1e-15);
        Assert.Equal([0.25, 0.25, -0.75, 0.25], delta);
    }

    [Fact]
    public void LogitsInTheThousands_GiveTheFiniteLossAndGradient()
    {
        // e^1000 overflows float64; after subtracting the max, the terms are 1, e^-1000 = 0 and e^-3000 = 0.
        double[] z = [1000, 0, -2000], y = [0, 1, 0], delta = new double[3];

        double loss = SoftmaxCrossEntropy.Sum<double>(z, y, 1, 3, delta, computeDelta: true);

        Assert.Equal(1000.0, loss);
        Assert.Equal([1.0, -1.0, 0.0], delta);
    }

    [Fact]
    public void Float32_LogitsBeyondFloatExpRange_StayFinite()
    {
        // e^100 overflows float32 (max ~3.4e38 = e^88.7).
        float[] z = [100f, 90f, -100f], y = [1, 0, 0], delta = new float[3];

        double loss = SoftmaxCrossEntropy.Sum<float>(z, y, 1, 3, delta, computeDelta: true);

        Assert.Equal(Math.Log(1 + Math.Exp(-10)), loss, 1e-6);
        Assert.All(delta, d => Assert.True(float.IsFinite(d)));
        Assert.Equal(-(float)(Math.Exp(-10) / (1 + Math.Exp(-10))), delta[0], 1e-6f);
    }

    [Fact]
    public void MinusInfinityLogitOfAnotherClass_LeavesTheLossFinite_LikeAClassIndex()
    {
        double[] z = [2, double.NegativeInfinity, 1], y = [1, 0, 0], delta = new double[3];

        double loss = SoftmaxCrossEntropy.Sum<double>(z, y, 1, 3, delta, computeDelta: true);

        Assert.Equal(Math.Log(1 + Math.Exp(-1)), loss, 1e-15);
        Assert.Equal(0.0, delta[1]);
    }

    [Fact]
    public void NaNLogit_GivesANaNLoss_SoTheJobReportsItDiverged()
    {
        double[] z = [2, double.NaN, 1], y = [1, 0, 0], delta = new double[3];

        Assert.True(double.IsNaN(SoftmaxCrossEntropy.Sum<double>(z, y, 1, 3, delta, computeDelta: false)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Gradient_MatchesFiniteDifferences_ForLabelAndProbabilityTargets(bool probabilities)
    {
        const int rows = 4, classes = 5;
        var z = TestArrays.Normal(rows * classes, seed: 3, std: 2.0);
        var y = probabilities ? ProbabilityRows(rows, classes, seed: 4) : TestArrays.OneHot(rows, classes, seed: 4);
        var delta = new double[z.Length];
        SoftmaxCrossEntropy.Sum<double>(z, y, rows, classes, delta, computeDelta: true);

        var numeric = GradientCheck.Numeric(q => SoftmaxCrossEntropy.Sum<double>(q, y, rows, classes, new double[q.Length], computeDelta: false),
            z, TestArrays.All(z.Length));

        for (int i = 0; i < z.Length; i++)
            Assert.True(GradientCheck.RelativeError(delta[i], numeric[i], 1e-6) < 1e-7, $"d loss / d z[{i}]: {delta[i]:R}, numeric {numeric[i]:R}");
    }

    [Fact]
    public void ShiftingARowsLogits_ChangesNeitherLossNorGradient()
    {
        double[] z = [0.3, -1.2, 2.5], shifted = [500.3, 498.8, 502.5], y = [0, 1, 0];
        double[] delta = new double[3], shiftedDelta = new double[3];

        double loss = SoftmaxCrossEntropy.Sum<double>(z, y, 1, 3, delta, computeDelta: true);
        double shiftedLoss = SoftmaxCrossEntropy.Sum<double>(shifted, y, 1, 3, shiftedDelta, computeDelta: true);

        Assert.Equal(loss, shiftedLoss, 1e-12);
        for (int k = 0; k < 3; k++) Assert.Equal(delta[k], shiftedDelta[k], 1e-12);
    }

    [Fact]
    public void RowsComputedInTwoShards_HaveTheBitsOfTheWholeBatch()
    {
        // 37 rows of 10 classes; shards of 20 and 17 rows at other offsets and lengths than in the whole.
        const int rows = 37, classes = 10, first = 20;
        var z = TestArrays.Normal(rows * classes, seed: 8, std: 3.0);
        var y = TestArrays.OneHot(rows, classes, seed: 9);
        var whole = new double[z.Length];
        SoftmaxCrossEntropy.Sum<double>(z, y, rows, classes, whole, computeDelta: true);

        var parts = new double[z.Length + 3];
        SoftmaxCrossEntropy.Sum<double>(z.AsSpan(0, first * classes), y, first, classes, parts.AsSpan(1), computeDelta: true);
        SoftmaxCrossEntropy.Sum<double>(z.AsSpan(first * classes), y.AsSpan(first * classes), rows - first, classes, parts.AsSpan(3 + first * classes), computeDelta: true);

        Assert.Equal(whole[..(first * classes)], parts[1..(1 + first * classes)]);
        Assert.Equal(whole[(first * classes)..], parts[(3 + first * classes)..]);
    }

    private static double[] ProbabilityRows(int rows, int classes, int seed)
    {
        var values = TestArrays.Normal(rows * classes, seed);
        for (int r = 0; r < rows; r++)
        {
            var row = values.AsSpan(r * classes, classes);
            double sum = 0;
            for (int k = 0; k < classes; k++) sum += row[k] = Math.Exp(row[k]);
            for (int k = 0; k < classes; k++) row[k] /= sum;
        }
        return values;
    }
}
