namespace Trainer.Core.Tests.Autograd;

using Trainer.Core.Autograd;

/// <summary>The errors a user meets, in words they can act on (PyTorch's wording where it has one).</summary>
public sealed class AutogradErrorTests
{
    [Fact]
    public void SecondBackward_ThroughAFreedGraph_SaysToRetainTheGraph()
    {
        var x = Tensor.Vector([1.0, 2.0], requiresGrad: true);
        var loss = x.Sigmoid().Sum();
        loss.Backward();

        var error = Assert.Throws<InvalidOperationException>(() => loss.Backward());
        Assert.Contains("Trying to backward through the graph a second time", error.Message);
        Assert.Contains("retainGraph: true", error.Message);
    }

    [Fact]
    public void GradAfterGrad_WithoutRetainGraph_IsAlsoRefused()
    {
        var x = Tensor.Scalar(3.0, requiresGrad: true);
        var y = x.Exp() * x;
        Autograd.Grad(y, x);
        var error = Assert.Throws<InvalidOperationException>(() => Autograd.Grad(y, x));
        Assert.Contains("Trying to backward through the graph a second time", error.Message);
    }

    [Fact]
    public void BackwardOfANonScalar_WithoutASeed_SaysGradCanOnlyBeImplicitForScalars()
    {
        var x = Tensor.Matrix(2, 3, new double[6], requiresGrad: true);
        var error = Assert.Throws<InvalidOperationException>(() => (x * 2.0).Backward());
        Assert.Contains("grad can be implicitly created only for scalar outputs", error.Message);
        Assert.Contains("(2, 3)", error.Message);

        error = Assert.Throws<InvalidOperationException>(() => Autograd.Grad(x * 2.0, x));
        Assert.Contains("grad can be implicitly created only for scalar outputs", error.Message);
    }

    [Fact]
    public void GradWithRespectToATensorThatDoesNotRequireGrad_NamesTheInputAndTheFix()
    {
        var x = Tensor.Vector([1.0, 2.0], requiresGrad: true);
        var c = Tensor.Vector([3.0, 4.0]);
        var error = Assert.Throws<InvalidOperationException>(() => Autograd.Grad((x * c).Sum(), c));
        Assert.Contains("does not require grad", error.Message);
        Assert.Contains("inputs[0]", error.Message);
        Assert.Contains("requiresGrad: true", error.Message);
    }

    [Fact]
    public void BackwardOfAConstant_SaysNothingRequiresGrad()
    {
        var error = Assert.Throws<InvalidOperationException>(() => (Tensor.Scalar(1.0) * 2.0).Backward());
        Assert.Contains("does not require grad and has no grad function", error.Message);
    }

    [Fact]
    public void UnusedInput_IsAnError_UnlessAllowUnused()
    {
        var x = Tensor.Scalar(1.0, requiresGrad: true);
        var z = Tensor.Scalar(1.0, requiresGrad: true);
        var error = Assert.Throws<InvalidOperationException>(() => Autograd.Grad(x * 2.0, z));
        Assert.Contains("appears to not have been used in the graph", error.Message);
        Assert.Contains("allowUnused: true", error.Message);
    }

    [Theory]
    [InlineData("add")]
    [InlineData("sub")]
    [InlineData("mul")]
    [InlineData("div")]
    public void ElementwiseShapeMismatch_NamesBothShapes(string op)
    {
        var a = Tensor.Zeros(Shape.Matrix(2, 3));
        var b = Tensor.Zeros(Shape.Matrix(4, 3));
        Func<Tensor> f = op switch { "add" => () => a + b, "sub" => () => a - b, "mul" => () => a * b, _ => () => a / b };
        var error = Assert.Throws<ArgumentException>(f);
        Assert.Contains($"{op}: shapes (2, 3) and (4, 3) cannot be broadcast together", error.Message);
    }

    [Fact]
    public void MatMulShapeMismatch_NamesBothShapesAndTheInnerDimensions()
    {
        var error = Assert.Throws<ArgumentException>(() => Tensor.Zeros(Shape.Matrix(2, 3)).MatMul(Tensor.Zeros(Shape.Matrix(4, 5))));
        Assert.Contains("(2, 3) and (4, 5)", error.Message);
        Assert.Contains("inner dimensions 3 and 4", error.Message);
    }

    [Fact]
    public void SeedOfTheWrongShape_NamesBothShapes()
    {
        var x = Tensor.Vector([1.0, 2.0], requiresGrad: true);
        var error = Assert.Throws<ArgumentException>(() => (x * 2.0).Backward(Tensor.Vector([1.0, 2.0, 3.0])));
        Assert.Contains("(3,)", error.Message);
        Assert.Contains("(2,)", error.Message);
    }

    [Fact]
    public void IndexOutOfRange_NamesTheSizeAndShape()
    {
        var error = Assert.Throws<IndexOutOfRangeException>(() => Tensor.Vector([1.0, 2.0])[2]);
        Assert.Contains("index 2 is out of bounds for dimension 0 with size 2", error.Message);
    }

    [Fact]
    public void ReshapeToADifferentSize_NamesBothShapes()
    {
        var error = Assert.Throws<ArgumentException>(() => Tensor.Zeros(Shape.Matrix(2, 3)).Reshape(Shape.Vector(5)));
        Assert.Contains("(2, 3)", error.Message);
        Assert.Contains("(5,)", error.Message);
    }
}
