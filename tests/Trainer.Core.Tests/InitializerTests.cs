using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>Seeded initial weights: reproducible, one stream per weight tensor, biases zero, the documented scales.</summary>
public class InitializerTests
{
    [Fact]
    public void AddingBiases_DoesNotShiftTheWeightDraws()
    {
        var plain = ParameterLayout.For(new ModelSpec([20, 10, 5]));
        var biased = ParameterLayout.For(new ModelSpec([20, 10, 5], bias: true));
        var p = Initializer.Create(plain, InitKind.Normal, seed: 4);
        var q = Initializer.Create(biased, InitKind.Normal, seed: 4);
        for (int l = 1; l <= 2; l++)
            Assert.Equal(plain.Weight(l).Of(p.AsSpan()).ToArray(), biased.Weight(l).Of(q.AsSpan()).ToArray());
        Assert.All([biased.Bias(1)!, biased.Bias(2)!], b => Assert.All(b.Of(q.AsSpan()).ToArray(), v => Assert.Equal(0.0, v)));
    }

    [Theory]
    [InlineData(InitKind.Normal)]
    [InlineData(InitKind.Xavier)]
    [InlineData(InitKind.He)]
    public void Float32Weights_AreTheFloat64WeightsRounded(InitKind kind)
    {
        var layout = ParameterLayout.For(new ModelSpec([300, 70, 10], bias: true));
        var expected = Precisions.Narrow(Initializer.Create(layout, kind, seed: 6));
        var actual = new float[layout.Count];
        actual.AsSpan().Fill(float.NaN);
        Initializer.Fill<float>(layout, kind, 6, actual);
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void SameSeed_GivesTheSameWeights_AndOtherSeedsDoNot()
    {
        var layout = ParameterLayout.For(ModelSpec.Seed);
        Assert.Equal(Initializer.Create(layout, InitKind.Normal, 0), Initializer.Create(layout, InitKind.Normal, 0));
        Assert.NotEqual(Initializer.Create(layout, InitKind.Normal, 0), Initializer.Create(layout, InitKind.Normal, 1));
    }

    [Fact]
    public void WeightsAndData_DoNotShareDraws()
    {
        var w1 = ParameterLayout.For(ModelSpec.Seed).Weight(1);
        var p = Initializer.Create(ParameterLayout.For(ModelSpec.Seed), InitKind.Normal, seed: 0);
        var data = Synthetic.Data(64, 1000, 10, seed: 0);
        Assert.NotEqual(data.X[..100], w1.Of(p.AsSpan())[..100].ToArray());
    }

    [Theory]
    [InlineData(InitKind.Normal, 1.0)]
    [InlineData(InitKind.Xavier, 0.0408248290463863)]   // sqrt(2 / (1000 + 200))
    [InlineData(InitKind.He, 0.0447213595499958)]       // sqrt(2 / 1000)
    public void Weights_HaveTheDocumentedStandardDeviation(InitKind kind, double std)
    {
        var layout = ParameterLayout.For(new ModelSpec([1000, 200]));
        var w = Initializer.Create(layout, kind, seed: 9);
        double mean = w.Average();
        double sd = Math.Sqrt(w.Sum(v => (v - mean) * (v - mean)) / (w.Length - 1));
        // 200000 draws: the sample sd is within ~0.2% of the true one (5 standard errors is 0.8%).
        Assert.InRange(sd / std, 0.992, 1.008);
        Assert.InRange(mean / std, -0.012, 0.012);
    }
}
