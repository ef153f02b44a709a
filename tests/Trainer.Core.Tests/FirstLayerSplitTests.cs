using System.Numerics;
using System.Numerics.Tensors;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// A job that splits its first layer's units across W workers computes exactly the single-process
/// full-batch step with the managed GEMM: the same losses and the same parameter bits for every W,
/// every activation, loss and bias choice, in float64 and float32. OpenBLAS gives an element
/// different operations depending on its tile, so there a split job is reproducible bit for bit
/// and agrees with one worker to rounding.
/// </summary>
public class FirstLayerSplitTests
{
    private const int Steps = 6;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(9)]
    public void SplitJob_EqualsTheSingleProcessStep_BitForBit_ForAnyWorkerCount(int workers)
    {
        var blas = new ManagedBlas();
        foreach (var model in Models)
        {
            var (spec, initial, expectedLosses, expected, split) = Run(model, workers, blas);
            var (losses, parameters) = split();
            Assert.Equal(expectedLosses, losses);
            Assert.Equal(expected, parameters);
            Assert.NotEqual(initial, parameters);
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void SplitJob_OnOpenBlas_IsReproducible_AndAgreesWithTheSingleProcessStepToRounding(int workers)
    {
        var blas = Backends.RequireOpenBlas();
        foreach (var model in Models)
        {
            var (_, _, expectedLosses, expected, split) = Run(model, workers, blas);
            var (losses, parameters) = split();
            var (againLosses, again) = split();
            Assert.Equal(losses, againLosses);
            Assert.Equal(parameters, again);
            Assert.True(MaxRelativeError(losses, expectedLosses) < 1e-12, $"losses differ by {MaxRelativeError(losses, expectedLosses):E2}");
            Assert.True(MaxRelativeError(parameters, expected) < 1e-12, $"parameters differ by {MaxRelativeError(parameters, expected):E2}");
        }
    }

    [Theory]
    [InlineData(OptimizerKind.Momentum)]
    [InlineData(OptimizerKind.Nesterov)]
    [InlineData(OptimizerKind.Adam)]
    [InlineData(OptimizerKind.AdamW)]
    public void SplitJob_WithAStatefulOptimizer_EqualsTheSingleProcessStep_BitForBit_StateIncluded(OptimizerKind kind)
    {
        // Each worker steps its own rows and its replica of the upper layers with their own state: element-wise, so the same bits.
        var blas = new ManagedBlas();
        var optimizer = new OptimizerSpec { Kind = kind, WeightDecay = 0.01, Schedule = ScheduleKind.Cosine, WarmupSteps = 2 };
        foreach (var model in Models)
        {
            var spec = Spec(model, 3) with { Optimizer = optimizer };
            var data = Synthetic.Data(spec.Batch, model.InputSize, model.OutputSize, seed: 3);
            var initial = Initializer.Create(ParameterLayout.For(model), InitKind.Normal, seed: 4);
            var (expectedLosses, expected, expectedState) = SingleProcess(spec, new Mlp<double>(model, blas), initial, data.X, data.Y);
            var (losses, parameters, state) = Split(spec, blas, initial, data.X, data.Y);
            Assert.Equal(expectedLosses, losses);
            Assert.Equal(expected, parameters);
            Assert.Equal(expectedState, state);
            Assert.Contains(state, v => v != 0);
        }
    }

    [Fact]
    public void SplitJob_InFloat32_EqualsTheSingleProcessFloat32Step_BitForBit()
    {
        var blas = new ManagedBlas();
        var model = new ModelSpec([20, 9, 3], Activation.Tanh, LossKind.Mse, bias: true);
        var spec = Spec(model, 4) with { Precision = Precision.Float32 };
        var data = Synthetic.Data(spec.Batch, model.InputSize, model.OutputSize, seed: 3);
        var initial = Precisions.Narrow(Initializer.Create(ParameterLayout.For(model), InitKind.Normal, seed: 4));
        float[] x = Precisions.Narrow(data.X), y = Precisions.Narrow(data.Y);
        var (expectedLosses, expected, _) = SingleProcess(spec, new Mlp<float>(model, blas), initial, x, y);
        var (losses, parameters, _) = Split(spec, blas, initial, x, y);
        Assert.Equal(expectedLosses, losses);
        Assert.Equal(expected, parameters);
    }

    [Fact]
    public void ASplitWorker_RefusesToStepBeforeItHasParameters_AndChecksItsBuffers()
    {
        var model = new ModelSpec([4, 3, 2]);
        var spec = Spec(model, 2);
        var data = Synthetic.Data(spec.Batch, 4, 2, seed: 0);
        var split = new FirstLayerSplit<double>(spec, 1, data.X, data.Y, new ManagedBlas());
        Assert.Equal(new Shard(1, 2, 1), split.Units);
        var e = Assert.Throws<InvalidOperationException>(() => split.Activations(new double[split.BlockLength]));
        Assert.Contains("holds no parameters", e.Message);
        split.Load(new double[ParameterLayout.For(model).Count], [], 0);
        var wrong = Assert.Throws<ArgumentException>(() => split.Activations(new double[split.BlockLength + 1]));
        Assert.Contains($"{spec.Batch} samples x 1 units expected", wrong.Message);
    }

    private static readonly ModelSpec[] Models =
    [
        new([20, 9, 3]),                                               // the seed's shape: sigmoid, SSE, no bias
        new([20, 9, 3], Activation.Tanh, LossKind.Mse, bias: true),
        new([20, 9, 5, 3], Activation.Relu, LossKind.Sse, bias: true), // two layers above the split
    ];

    private static TrainingSpec Spec(ModelSpec model, int workers) => new()
    {
        Model = model, Batch = 10, Workers = workers, LearningRate = 0.01, Steps = Steps, Parallelism = Parallelism.SplitFirstLayer,
    };

    /// <summary>The single-process run of <paramref name="model"/>, and the split run to compare with it.</summary>
    private static (TrainingSpec Spec, double[] Initial, double[] Losses, double[] Parameters, Func<(double[] Losses, double[] Parameters)> Split) Run(ModelSpec model, int workers, IBlas blas)
    {
        var spec = Spec(model, workers);
        var data = Synthetic.Data(spec.Batch, model.InputSize, model.OutputSize, seed: 3);
        var initial = Initializer.Create(ParameterLayout.For(model), InitKind.Normal, seed: 4);
        var (losses, parameters, _) = SingleProcess(spec, new Mlp<double>(model, blas), initial, data.X, data.Y);
        return (spec, initial, losses, parameters, () =>
        {
            var (splitLosses, splitParameters, _) = Split(spec, blas, initial, data.X, data.Y);
            return (splitLosses, splitParameters);
        });
    }

    private static double MaxRelativeError(double[] actual, double[] expected) =>
        actual.Zip(expected, (a, e) => GradientCheck.RelativeError(a, e, 1e-12)).Max();

    /// <summary>The plain full-batch loop: loss and gradient, the loss scale once, the job's optimizer on the whole model.</summary>
    private static (double[] Losses, T[] Parameters, T[] State) SingleProcess<T>(TrainingSpec spec, Mlp<T> model, T[] initial, T[] x, T[] y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var p = (T[])initial.Clone();
        var g = new T[p.Length];
        var optimizer = Optimizer<T>.For(spec);
        var state = new T[optimizer.StateSlots * p.Length];
        double scale = spec.Model.Loss.Scale(spec.Batch, spec.Model.OutputSize);
        var losses = new double[Steps];
        for (int s = 0; s < Steps; s++)
        {
            losses[s] = model.LossAndGradient(p, x, y, spec.Batch, g) * scale;
            if (scale != 1.0) TensorPrimitives.Multiply(g, T.CreateTruncating(scale), g);
            optimizer.Step(s + 1, p, g, state);
        }
        return (losses, p, state);
    }

    /// <summary>W split workers exchanging their activation blocks in rank order, as the cluster runs them.</summary>
    private static (double[] Losses, T[] Parameters, T[] State) Split<T>(TrainingSpec spec, IBlas blas, T[] initial, T[] x, T[] y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var workers = Enumerable.Range(0, spec.Workers).Select(r => new FirstLayerSplit<T>(spec, r, x, y, blas)).ToArray();
        var state = new T[spec.Optimizer.StateSlots * initial.Length];
        foreach (var w in workers) w.Load(initial, state, 0);
        var blocks = new T[spec.Batch * spec.Model.LayerSizes[1]];
        var losses = new double[Steps];
        for (int s = 0; s < Steps; s++)
        {
            foreach (var w in workers) w.Activations(blocks.AsSpan(spec.Batch * w.Units.Start, w.BlockLength));
            var stepLosses = workers.Select(w => w.Step(blocks)).Distinct().ToArray();
            losses[s] = Assert.Single(stepLosses);   // every worker computes the same loss
        }
        var shares = workers.Select(w =>
        {
            var share = new T[w.ShareLength];
            w.WriteShare(share);
            return share;
        }).ToArray();
        var parameters = new T[initial.Length];
        FirstLayerSplit<T>.Merge(spec, shares, parameters, state);
        return (losses, parameters, state);
    }
}
