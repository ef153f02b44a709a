using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>Command-line spellings of the model, activation, loss, init, engine, optimizer and schedule, and their errors.</summary>
public class SpecParsingTests
{
    [Theory]
    [InlineData("1000-100-10", new[] { 1000, 100, 10 })]
    [InlineData("7-5-4-3", new[] { 7, 5, 4, 3 })]
    [InlineData("2-1", new[] { 2, 1 })]
    public void ParseArchitecture_ReadsLayerWidths(string text, int[] expected)
        => Assert.Equal(expected, ModelSpec.ParseArchitecture(text));

    [Theory]
    [InlineData(null, "(none)")]
    [InlineData("", "")]
    [InlineData("  ", "  ")]
    [InlineData("1000", "1000")]
    [InlineData("1000-0-10", "1000-0-10")]
    [InlineData("1000--10", "1000--10")]
    [InlineData("1000-100-10-", "1000-100-10-")]
    [InlineData("-5-3", "-5-3")]
    [InlineData("a-b", "a-b")]
    [InlineData("1000 - 10", "1000 - 10")]
    [InlineData("99999999999-10", "99999999999-10")]
    public void ParseArchitecture_RejectsMalformedText_NamingFieldAndValue(string? text, string shown)
    {
        var e = Assert.Throws<SpecException>(() => ModelSpec.ParseArchitecture(text, "model"));
        Assert.Equal("model", e.Field);
        Assert.StartsWith($"model: '{shown}' is not allowed", e.Message);
        Assert.Contains("e.g. 1000-100-10", e.Message);
    }

    [Fact]
    public void ModelSpec_RejectsModelsWithTooManyParameters()
    {
        var e = Assert.Throws<SpecException>(() => new ModelSpec([100_000, 100_000, 10]));
        Assert.Equal("model", e.Field);
        Assert.Contains("10001000000 parameters", e.Message);
    }

    [Fact]
    public void ModelSpec_RejectsNonPositiveWidths()
        => Assert.Equal("model", Assert.Throws<SpecException>(() => new ModelSpec([10, 0, 1])).Field);

    [Theory]
    [InlineData("activation", "softmax", "allowed: sigmoid, tanh, relu")]
    [InlineData("loss", "mae", "allowed: sse, mse, ce")]
    [InlineData("init", "uniform", "allowed: normal, xavier, he")]
    [InlineData("engine", "jit", "allowed: hand, autograd")]
    [InlineData("optimizer", "rmsprop", "allowed: sgd, momentum, nesterov, adam, adamw")]
    [InlineData("lr-schedule", "linear", "allowed: constant, step, cosine")]
    public void Parse_RejectsUnknownNames_ListingTheAllowedOnes(string field, string value, string allowed)
    {
        Func<string, string, object> parse = field switch
        {
            "activation" => (v, f) => Activations.Parse(v, f),
            "loss" => (v, f) => Losses.Parse(v, f),
            "init" => (v, f) => Initializer.Parse(v, f),
            "optimizer" => (v, f) => OptimizerSpec.ParseKind(v, f),
            "lr-schedule" => (v, f) => OptimizerSpec.ParseSchedule(v, f),
            _ => (v, f) => TrainingSpec.ParseEngine(v, f),
        };
        var e = Assert.Throws<SpecException>(() => parse(value, field));
        Assert.Equal(field, e.Field);
        Assert.StartsWith($"{field}: '{value}' is not allowed; {allowed}", e.Message);
        Assert.Throws<SpecException>(() => parse(null!, field));
    }

    [Fact]
    public void Parse_AcceptsNamesInAnyCase()
    {
        Assert.Equal(Activation.Tanh, Activations.Parse(" TANH "));
        Assert.Equal(LossKind.Mse, Losses.Parse("Mse"));
        Assert.Equal(InitKind.He, Initializer.Parse("he"));
        Assert.Equal(Engine.Autograd, TrainingSpec.ParseEngine("AutoGrad"));
        Assert.Equal(OptimizerKind.AdamW, OptimizerSpec.ParseKind(" AdamW "));
        Assert.Equal(ScheduleKind.Cosine, OptimizerSpec.ParseSchedule("COSINE"));
    }

    [Theory]
    [InlineData("sse", LossKind.Sse)]
    [InlineData("mse", LossKind.Mse)]
    [InlineData("ce", LossKind.CrossEntropy)]
    public void ParseLoss_ReadsEveryLoss_AndNameSpellsItBack(string text, LossKind loss)
    {
        Assert.Equal(loss, Losses.Parse(text));
        Assert.Equal(text, loss.Name());
        Assert.EndsWith($" {text}", new ModelSpec([3, 2], loss: loss).ToString());
    }

    [Fact]
    public void ModelSpec_RefusesCrossEntropyOverOneOutput_WhoseSoftmaxIsAlwaysOne()
    {
        var e = Assert.Throws<SpecException>(() => new ModelSpec([4, 3, 1], loss: LossKind.CrossEntropy));
        Assert.Equal("loss", e.Field);
        Assert.Contains("at least 2 outputs", e.Message);
    }

    [Theory]
    [InlineData("sgd", OptimizerKind.Sgd)]
    [InlineData("momentum", OptimizerKind.Momentum)]
    [InlineData("nesterov", OptimizerKind.Nesterov)]
    [InlineData("adam", OptimizerKind.Adam)]
    [InlineData("adamw", OptimizerKind.AdamW)]
    public void ParseKind_ReadsEveryOptimizer_AndNameSpellsItBack(string text, OptimizerKind kind)
    {
        Assert.Equal(kind, OptimizerSpec.ParseKind(text));
        Assert.Equal(text, new OptimizerSpec { Kind = kind }.Name);
    }

    [Theory]
    [InlineData("constant", ScheduleKind.Constant)]
    [InlineData("step", ScheduleKind.Step)]
    [InlineData("cosine", ScheduleKind.Cosine)]
    public void ParseSchedule_ReadsEverySchedule(string text, ScheduleKind kind)
        => Assert.Equal(kind, OptimizerSpec.ParseSchedule(text));

    [Fact]
    public void Parallelism_ReadsDataSplitAndAuto()
    {
        Assert.Equal(Parallelism.Data, TrainingSpec.ParseParallelism("data"));
        Assert.Equal(Parallelism.SplitFirstLayer, TrainingSpec.ParseParallelism("Split"));
        Assert.Null(TrainingSpec.ParseParallelism("auto"));
    }
}
