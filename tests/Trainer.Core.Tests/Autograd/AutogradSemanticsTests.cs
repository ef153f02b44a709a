namespace Trainer.Core.Tests.Autograd;

using Trainer.Core.Autograd;

/// <summary>PyTorch's autograd semantics: accumulation, retain/create graph, no-grad, seeds, higher orders.</summary>
public sealed class AutogradSemanticsTests
{
    [Fact]
    public void SeedExample_GradientOfGradients_IsSixSix()
    {
        // SEED.md section 2, as in samples/HigherOrderGradients.
        var x = Tensor.Vector([5.0, 7.0], requiresGrad: true);
        var y = x.Pow(2);
        var loss1 = y.Mean();
        var h1 = Autograd.Grad(y[0], x, retainGraph: true, createGraph: true);
        var h2 = Autograd.Grad(y[1], x, retainGraph: true, createGraph: true);
        var loss2 = (h1 - h2).Mean();

        var grad = Autograd.Grad(loss1 + loss2, x);

        Assert.Equal("[10, 0]", h1.ToString());
        Assert.Equal("[0, 14]", h2.ToString());
        Assert.Equal("[6, 6]", grad.ToString());
    }

    [Fact]
    public void Backward_AccumulatesIntoLeafGrad_AcrossCalls()
    {
        var x = Tensor.Vector([1.0, -2.0, 3.0], requiresGrad: true);
        var loss = (x * x).Sum();   // d/dx = 2x

        loss.Backward(retainGraph: true);
        Assert.Equal([2.0, -4.0, 6.0], x.Grad!.ToArray());
        loss.Backward();
        Assert.Equal([4.0, -8.0, 12.0], x.Grad!.ToArray());

        x.ZeroGrad();
        Assert.Null(x.Grad);
    }

    [Fact]
    public void Grad_ReturnsGradients_WithoutTouchingLeafGrad()
    {
        var x = Tensor.Scalar(3.0, requiresGrad: true);
        var g = Autograd.Grad(x.Pow(3), x);
        Assert.Equal(27.0, g.Item());
        Assert.Null(x.Grad);
    }

    [Fact]
    public void Backward_OnlyLeavesGetGrad()
    {
        var x = Tensor.Vector([1.0, 2.0], requiresGrad: true);
        var h = x.Exp();
        h.Sum().Backward();
        Assert.False(h.IsLeaf);
        Assert.Null(h.Grad);
        Assert.NotNull(x.Grad);
    }

    [Fact]
    public void Backward_WithSeedGradient_GivesTheVectorJacobianProduct()
    {
        var x = Tensor.Matrix(2, 2, [1.0, 2.0, 3.0, 4.0], requiresGrad: true);
        var y = x * x;   // Jacobian diag(2x)
        y.Backward(Tensor.Matrix(2, 2, [1.0, 0.5, 0.0, -1.0]));
        Assert.Equal([2.0, 2.0, 0.0, -8.0], x.Grad!.ToArray());
    }

    [Fact]
    public void CreateGraph_MakesGradientsDifferentiable_AndWithoutIt_TheyAreConstants()
    {
        var x = Tensor.Scalar(2.0, requiresGrad: true);
        Assert.True(Autograd.Grad(x.Pow(3), x, createGraph: true).RequiresGrad);
        Assert.False(Autograd.Grad(x.Pow(3), x).RequiresGrad);
    }

    [Fact]
    public void RepeatedGrad_GivesHigherDerivatives_UpToTheFourth()
    {
        // f = x⁴: f' = 4x³, f'' = 12x², f''' = 24x, f'''' = 24, at x = 1.5.
        var x = Tensor.Scalar(1.5, requiresGrad: true);
        var d = x.Pow(4);
        var expected = new[] { 4 * 3.375, 12 * 2.25, 24 * 1.5, 24.0 };
        foreach (var e in expected)
        {
            d = Autograd.Grad(d, x, createGraph: true);
            Assert.Equal(e, d.Item(), 12);
        }
    }

    [Fact]
    public void HessianVectorProduct_OfSumOfCubes_IsSixXTimesV()
    {
        var x = Tensor.Vector([1.0, -2.0, 0.5], requiresGrad: true);
        var v = Tensor.Vector([0.3, 1.0, -2.0]);
        var g = Autograd.Grad(x.Pow(3).Sum(), x, createGraph: true);
        var hv = Autograd.Grad((g * v).Sum(), x);
        Assert.Equal([6 * 1.0 * 0.3, 6 * -2.0 * 1.0, 6 * 0.5 * -2.0], hv.ToArray());
    }

    [Fact]
    public void NoGrad_BuildsNoGraph_AndRestoresTheMode()
    {
        var x = Tensor.Scalar(1.0, requiresGrad: true);
        using (Autograd.NoGrad())
        {
            Assert.False((x * 2.0).RequiresGrad);
            Assert.False(Autograd.IsGradEnabled);
        }
        Assert.True(Autograd.IsGradEnabled);
        Assert.True((x * 2.0).RequiresGrad);
    }

    [Fact]
    public void Grad_WithRespectToAnIntermediate_StopsThere()
    {
        var x = Tensor.Scalar(2.0, requiresGrad: true);
        var h = x.Pow(2);           // 4
        var y = h.Pow(3);           // dy/dh = 3h² = 48
        Assert.Equal(48.0, Autograd.Grad(y, h).Item());
    }

    [Fact]
    public void UnusedInput_WithAllowUnused_GetsNull()
    {
        var x = Tensor.Scalar(1.0, requiresGrad: true);
        var unused = Tensor.Scalar(2.0, requiresGrad: true);
        var grads = Autograd.Grad([x * 3.0], [x, unused], allowUnused: true);
        Assert.Equal(3.0, grads[0]!.Item());
        Assert.Null(grads[1]);
    }

    [Fact]
    public void ToString_PrintsLikeNumPy()
    {
        Assert.Equal("2.5", Tensor.Scalar(2.5).ToString());
        Assert.Equal("[1, -0.5]", Tensor.Vector([1.0, -0.5]).ToString());
        Assert.Equal("[[1, 2], [3, 4]]", Tensor.Matrix(2, 2, [1.0, 2.0, 3.0, 4.0]).ToString());
        Assert.Equal("(2, 3)", Shape.Matrix(2, 3).ToString());
        Assert.Equal("(3,)", Shape.Vector(3).ToString());
        Assert.Equal("()", Shape.Scalar.ToString());
    }
}
