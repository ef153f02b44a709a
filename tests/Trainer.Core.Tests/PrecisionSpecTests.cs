using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>--precision: parsing, and float32 only with the hand engine.</summary>
public class PrecisionSpecTests
{
    [Theory]
    [InlineData("float64", Precision.Float64)]
    [InlineData("FLOAT32", Precision.Float32)]
    public void Parse_AcceptsFloat64AndFloat32(string text, Precision expected) => Assert.Equal(expected, Precisions.Parse(text));

    [Fact]
    public void Parse_RejectsFloat16_NamingTheAllowedValues()
    {
        var error = Assert.Throws<SpecException>(() => Precisions.Parse("float16"));
        Assert.Equal("precision", error.Field);
        Assert.Contains("float64, float32", error.Message);
    }

    [Fact]
    public void Float32_WithTheAutogradEngine_IsRejected_SayingItNeedsTheHandEngine()
    {
        var error = Assert.Throws<SpecException>(() => new TrainingSpec { Precision = Precision.Float32, Engine = Engine.Autograd }.Validate());
        Assert.Equal("precision", error.Field);
        Assert.Contains("--engine hand", error.Message);
    }

    [Fact]
    public void Float32_WithAGradientPenalty_IsRejected_SayingItNeedsTheHandEngine()
    {
        var error = Assert.Throws<SpecException>(() => new TrainingSpec { Precision = Precision.Float32, Engine = Engine.Autograd, GradientPenalty = 0.1 }.Validate());
        Assert.Equal("precision", error.Field);
        Assert.Contains("--engine hand", error.Message);
    }

    [Fact]
    public void UndefinedPrecision_IsRejected() =>
        Assert.Equal("precision", Assert.Throws<SpecException>(() => new TrainingSpec { Precision = (Precision)7 }.Validate()).Field);
}
