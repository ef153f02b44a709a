namespace Trainer.Core.Tests.Autograd;

using Trainer.Core.Autograd;
using Trainer.Core.Data;
using Trainer.Core.Models;

/// <summary>The input-gradient penalty loss = sse + λ Σ_s ‖∂sse/∂x_s‖² (or ce in place of sse), trained by double backward.</summary>
public sealed class GradientPenaltyTests
{
    private const int Samples = 6;

    private static (ModelSpec Spec, Dataset Data, double[] Parameters) Small(Activation activation, bool bias, LossKind loss = LossKind.Sse)
    {
        var spec = new ModelSpec([4, 5, 3], activation, loss, bias);
        var layout = ParameterLayout.For(spec);
        var parameters = Initializer.Create(layout, InitKind.Xavier, seed: 11);
        foreach (var view in layout.Views.Where(v => v.Name.StartsWith('b')))
            Synthetic.Normals(view.Of(parameters.AsSpan()), seed: 5 + view.Offset, std: 0.3);
        var data = Synthetic.Data(Samples, 4, 3, seed: 11);
        if (loss == LossKind.CrossEntropy) data = new Dataset(data.X, TestArrays.OneHot(Samples, 3, seed: 11), Samples, 4, 3);
        return (spec, data, parameters);
    }

    [Theory]
    [InlineData(Activation.Sigmoid, false, LossKind.Sse)]
    [InlineData(Activation.Sigmoid, true, LossKind.Sse)]
    [InlineData(Activation.Tanh, true, LossKind.Sse)]
    [InlineData(Activation.Relu, true, LossKind.Sse)]
    [InlineData(Activation.Tanh, true, LossKind.CrossEntropy)]
    [InlineData(Activation.Sigmoid, false, LossKind.CrossEntropy)]
    public void ParameterGradient_MatchesFiniteDifferencesOfThePenalizedLoss(Activation activation, bool bias, LossKind loss)
    {
        var (spec, data, parameters) = Small(activation, bias, loss);
        var model = new AutogradMlp(spec, gradientPenalty: 0.3);
        var gradient = new double[parameters.Length];
        model.LossAndGradient(parameters, data.X, data.Y, Samples, gradient);

        var all = Enumerable.Range(0, parameters.Length).ToArray();
        var numeric = GradientCheck.Numeric(p => model.Loss(p, data.X, data.Y, Samples), parameters, all);

        TestTensors.Close(numeric, gradient, 1e-6, $"{spec} penalized gradient");
    }

    [Fact]
    public void PenalizedLoss_IsSsePlusLambdaTimesTheSquaredInputGradient()
    {
        // Reference: the penalty built by hand from the engine's first-order pieces.
        var (spec, data, parameters) = Small(Activation.Tanh, bias: false);
        var w1 = Tensor.Matrix(5, 4, parameters.AsSpan(0, 20));
        var w2 = Tensor.Matrix(3, 5, parameters.AsSpan(20, 15));
        var x = Tensor.Matrix(Samples, 4, data.X, requiresGrad: true);
        var sse = (Tensor.MatMul(Tensor.MatMul(x, w1, transposeB: true).Tanh(), w2, transposeB: true) - Tensor.Matrix(Samples, 3, data.Y)).Pow(2).Sum();
        var gx = Autograd.Grad(sse, x);
        double expected = sse.Item() + 0.7 * gx.Values.ToArray().Sum(v => v * v);

        double actual = new AutogradMlp(spec, gradientPenalty: 0.7).Loss(parameters, data.X, data.Y, Samples);

        Assert.Equal(expected, actual, 1e-12);
    }

    [Fact]
    public void Penalty_IsShardDecomposable_SumOfShardResultsIsTheFullBatchResult()
    {
        var (spec, data, parameters) = Small(Activation.Sigmoid, bias: true);
        var model = new AutogradMlp(spec, gradientPenalty: 0.5);
        var full = new double[parameters.Length];
        double fullLoss = model.LossAndGradient(parameters, data.X, data.Y, Samples, full);

        var sum = new double[parameters.Length];
        var part = new double[parameters.Length];
        double sumLoss = 0;
        foreach (var shard in Shard.Split(Samples, 3))
        {
            sumLoss += model.LossAndGradient(parameters, data.InputsOf(shard), data.TargetsOf(shard), shard.Count, part);
            for (int i = 0; i < sum.Length; i++) sum[i] += part[i];
        }

        Assert.Equal(fullLoss, sumLoss, 1e-12 * fullLoss);
        TestTensors.Close(full, sum, 1e-12, "sum of 3 shard gradients vs full batch");
    }

    [Fact]
    public void ZeroLambda_IsThePlainModel()
    {
        var (spec, data, parameters) = Small(Activation.Relu, bias: true);
        var plain = new double[parameters.Length];
        var zero = new double[parameters.Length];
        double plainLoss = new Mlp(spec).LossAndGradient(parameters, data.X, data.Y, Samples, plain);
        double zeroLoss = new AutogradMlp(spec, gradientPenalty: 0.0).LossAndGradient(parameters, data.X, data.Y, Samples, zero);
        Assert.Equal(plainLoss, zeroLoss, 1e-12 * plainLoss);
        TestTensors.Close(plain, zero, 1e-12, "λ = 0");
    }

    [Fact]
    public void Penalty_MatchesPyTorch_OnTheRecordedCase()
    {
        // tests/reference/autograd: tanh 3-5-2 without biases, λ = 0.3, 4 samples.
        var c = PyTorchReferenceTests.Load()["gradient_penalty"];
        var spec = new ModelSpec([3, 5, 2], Activation.Tanh, LossKind.Sse);
        double[] parameters = [.. c.Inputs["w1"], .. c.Inputs["w2"]];
        var gradient = new double[parameters.Length];

        double loss = new AutogradMlp(spec, gradientPenalty: 0.3).LossAndGradient(parameters, c.Inputs["x"], c.Inputs["y"], 4, gradient);

        Assert.Equal(c.Value, loss, 1e-12 * c.Value);
        TestTensors.Close([.. c.Grad["w1"], .. c.Grad["w2"]], gradient, 1e-12, "penalized gradient vs PyTorch");
    }

    [Fact]
    public void NegativeLambda_IsRefusedNamingTheOption()
    {
        var error = Assert.Throws<SpecException>(() => new AutogradMlp(ModelSpec.Seed, gradientPenalty: -1));
        Assert.Equal("gradient-penalty", error.Field);
    }
}
