using System.Numerics.Tensors;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Core.Tests.Optim;

/// <summary>
/// Plain SGD at a constant rate without warm-up keeps the seed's update to the bit: w + g·(−lr) with
/// the product and the sum each rounded (numpy's w − lr·g), −lr rounded to float first in float32,
/// and the rate exactly the spec's. Every recorded job (the seed's final loss 515.3775248) rests on it.
/// </summary>
public class SgdSeedBitsTests
{
    private const int Length = 1037;
    private const double Rate = 1e-5;

    [Fact]
    public void Sgd_IsTheSeedsUpdate_ToTheBit_InFloat64()
    {
        var optimizer = Optimizer<double>.For(new TrainingSpec { LearningRate = Rate });
        var w = TestArrays.Normal(Length, seed: 2);
        var g = TestArrays.Normal(Length, seed: 3, std: 100);
        var old = new double[Length];
        TensorPrimitives.MultiplyAdd(g, -Rate, w, old);   // the seed's Sgd.Step, verbatim
        var scalar = w.Select((wi, i) => wi - Rate * g[i]).ToArray();   // numpy's w - lr*g, one element at a time

        foreach (int step in new[] { 1, 2, 3000 })
        {
            Assert.Equal(Rate, optimizer.LearningRate(step));
            var next = (double[])w.Clone();
            optimizer.Step(step, next, g, []);
            Assert.Equal(old, next);
            Assert.Equal(scalar, next);
        }
    }

    [Fact]
    public void Sgd_IsTheSeedsUpdate_ToTheBit_InFloat32()
    {
        var optimizer = Optimizer<float>.For(new TrainingSpec { LearningRate = Rate, Precision = Precision.Float32 });
        var w = Precisions.Narrow(TestArrays.Normal(Length, seed: 2));
        var g = Precisions.Narrow(TestArrays.Normal(Length, seed: 3, std: 100));
        var old = new float[Length];
        TensorPrimitives.MultiplyAdd(g, -(float)Rate, w, old);   // the seed's float32 Sgd.Step, verbatim
        var scalar = w.Select((wi, i) => wi + g[i] * -(float)Rate).ToArray();

        var next = (float[])w.Clone();
        optimizer.Step(7, next, g, []);
        Assert.Equal(old, next);
        Assert.Equal(scalar, next);
    }

    [Fact]
    public void Sgd_RefusesAStateOrAStepOutsideTheJob_NamingWhatIsAllowed()
    {
        var optimizer = Optimizers.Create<double>(OptimizerSpec.Sgd, 0.1, steps: 10);
        var e = Assert.Throws<ArgumentException>(() => optimizer.Step(1, new double[3], new double[3], new double[3]));
        Assert.Contains("sgd keeps 0 state value(s) per parameter", e.Message);
        var step = Assert.Throws<ArgumentOutOfRangeException>(() => optimizer.Step(11, new double[3], new double[3], []));
        Assert.Contains("from 1 to the job's 10", step.Message);
        var adam = Optimizers.Create<float>(new OptimizerSpec { Kind = OptimizerKind.Adam }, 0.1, steps: 10);
        e = Assert.Throws<ArgumentException>(() => adam.Step(1, new float[3], new float[3], new float[3]));
        Assert.Contains("adam keeps 2 state value(s) per parameter: the state has 3 values for 3 parameters", e.Message);
        Assert.Throws<NotSupportedException>(() => Optimizers.Create<Half>(OptimizerSpec.Sgd, 0.1, 10));
    }
}
