namespace Trainer.Core.Tests.Autograd;

using Trainer.Core.Autograd;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

/// <summary>The autograd-built MLP against the hand-derived one, on the seed model.</summary>
public sealed class AutogradMlpTests
{
    public static TheoryData<Activation, bool, LossKind> Variants()
    {
        var data = new TheoryData<Activation, bool, LossKind>();
        foreach (var activation in Enum.GetValues<Activation>())
            foreach (var bias in new[] { false, true })
                foreach (var loss in Enum.GetValues<LossKind>())
                    data.Add(activation, bias, loss);
        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void SeedModel_GradientEqualsHandDerived_To1e12Relative(Activation activation, bool bias, LossKind loss)
    {
        var spec = new ModelSpec([1000, 100, 10], activation, loss, bias);
        var data = Synthetic.Data(64, 1000, 10, seed: 7);
        var y = loss == LossKind.CrossEntropy ? TestArrays.OneHot(64, 10, seed: 7) : data.Y;
        var parameters = Initializer.Create(ParameterLayout.For(spec), InitKind.Normal, seed: 7);   // the seed's N(0, 1)
        var hand = new double[parameters.Length];
        var auto = new double[parameters.Length];

        double handLoss = new Mlp(spec).LossAndGradient(parameters, data.X, y, 64, hand);
        double autoLoss = new AutogradMlp(spec).LossAndGradient(parameters, data.X, y, 64, auto);

        Assert.True(Math.Abs(handLoss - autoLoss) <= 1e-12 * handLoss, $"loss {autoLoss:R} vs hand {handLoss:R}");
        TestTensors.Close(hand, auto, 1e-12, $"{spec} gradient");
    }

    [Fact]
    public void SeedModel_WithBiasesAndNonZeroBiasValues_GradientEqualsHandDerived()
    {
        var spec = new ModelSpec([1000, 100, 10], Activation.Tanh, LossKind.Sse, bias: true);
        var data = Synthetic.Data(64, 1000, 10, seed: 3);
        var layout = ParameterLayout.For(spec);
        var parameters = Initializer.Create(layout, InitKind.Xavier, seed: 3);
        foreach (var view in layout.Views.Where(v => v.Name.StartsWith('b')))
            Synthetic.Normals(view.Of(parameters.AsSpan()), seed: view.Offset, std: 0.5);   // biases start at 0; make them matter
        var hand = new double[parameters.Length];
        var auto = new double[parameters.Length];

        new Mlp(spec).LossAndGradient(parameters, data.X, data.Y, 64, hand);
        new AutogradMlp(spec).LossAndGradient(parameters, data.X, data.Y, 64, auto);

        TestTensors.Close(hand, auto, 1e-12, "gradient with non-zero biases");
    }

    [Fact]
    public void Loss_EqualsLossAndGradientsLoss()
    {
        var spec = new ModelSpec([6, 5, 3], Activation.Sigmoid, LossKind.Sse, bias: true);
        var data = Synthetic.Data(8, 6, 3, seed: 1);
        var parameters = Initializer.Create(ParameterLayout.For(spec), InitKind.Normal, seed: 1);
        var model = new AutogradMlp(spec);
        double withGradient = model.LossAndGradient(parameters, data.X, data.Y, 8, new double[parameters.Length]);
        Assert.Equal(withGradient, model.Loss(parameters, data.X, data.Y, 8));
    }

    [Fact]
    public void SeedJob_TrainedThroughAutograd_GivesTheHandDerivedLosses()
    {
        var spec = new TrainingSpec { Steps = 30, Workers = 2 };
        var data = Synthetic.Data(spec.Batch, 1000, 10, spec.Seed);
        var hand = new LocalTrainer(spec, data, Initializer.Create(ParameterLayout.For(spec.Model), spec.Init, spec.Seed));
        var auto = new LocalTrainer(spec with { Engine = Engine.Autograd }, data, Initializer.Create(ParameterLayout.For(spec.Model), spec.Init, spec.Seed));
        for (int step = 0; step < spec.Steps; step++)
        {
            double expected = hand.Step(), actual = auto.Step();
            Assert.True(Math.Abs(expected - actual) <= 1e-10 * expected, $"step {step}: autograd loss {actual:R}, hand {expected:R}");
        }
        TestTensors.Close(hand.Parameters, auto.Parameters, 1e-10, "weights after 30 steps");
    }

    [Fact]
    public void GradientModels_AutogradEngine_BuildsAnAutogradMlpWithThePenalty()
    {
        var model = GradientModels.Create(new TrainingSpec { Engine = Engine.Autograd, GradientPenalty = 0.25 });
        var autograd = Assert.IsType<AutogradMlp>(model);
        Assert.Equal(0.25, autograd.GradientPenalty);
        Assert.Equal(ModelSpec.Seed, autograd.Spec);
    }
}
