using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Core.Tests.MiniBatches;

/// <summary>
/// Mini-batch training in the single-process trainer (the cluster's reference): each step is the
/// full-batch step on that step's rows, with the job's step number for the optimizer and schedule.
/// </summary>
public sealed class MiniBatchTrainingTests
{
    public static TheoryData<string, TrainingSpec> Jobs => new()
    {
        // 50 samples in batches of 16: 16, 16, 16 and a last batch of 2 kept; the first layer factored.
        { "sgd, sse, last batch kept", Spec(OptimizerSpec.Sgd) },
        { "adam, mse with biases, float32", Spec(new OptimizerSpec { Kind = OptimizerKind.Adam }) with
            { Precision = Precision.Float32, Model = new ModelSpec([30, 12, 4], Activation.Tanh, LossKind.Mse, bias: true) } },
        { "momentum, last batch dropped, 3 workers", Spec(new OptimizerSpec { Kind = OptimizerKind.Momentum }) with { DropLast = true, Workers = 3 } },
    };

    private static TrainingSpec Spec(OptimizerSpec optimizer) => new()
    {
        Model = new ModelSpec([30, 12, 4], Activation.Sigmoid, LossKind.Sse),
        LearningRate = 1e-3,
        Samples = 50,
        Batch = 16,
        Steps = 9,
        Workers = 2,
        Seed = 4,
        Optimizer = optimizer,
    };

    [Theory]
    [MemberData(nameof(Jobs))]
    public void EachStep_IsTheFullBatchStep_OnThatStepsRows_BitForBit(string job, TrainingSpec spec)
    {
        var data = Synthetic.Data(spec.Samples, spec.Model.InputSize, spec.Model.OutputSize, seed: 8);
        var initial = Initializer.Create(ParameterLayout.For(spec.Model), InitKind.Xavier, spec.Seed);
        var trainer = new LocalTrainer(spec, data, (double[])initial.Clone());
        var schedule = spec.Schedule();
        var parameters = (double[])initial.Clone();
        var state = new double[spec.Optimizer.StateSlots * parameters.Length];

        for (int step = 1; step <= spec.Steps; step++)
        {
            var rows = schedule.RowsOf(step).ToArray();
            var batch = new Dataset(
                [.. rows.SelectMany(r => data.X.AsSpan(r * data.InputSize, data.InputSize).ToArray())],
                [.. rows.SelectMany(r => data.Y.AsSpan(r * data.OutputSize, data.OutputSize).ToArray())],
                rows.Length, data.InputSize, data.OutputSize);
            var full = new LocalTrainer(spec with { Samples = 0, Batch = rows.Length, DropLast = false }, batch, parameters, optimizerState: state, stepsCompleted: step - 1);
            double expected = full.Step();
            (parameters, state) = (full.Parameters, full.OptimizerState);

            Assert.True(expected.Equals(trainer.Step()), $"{job}: step {step}'s loss");
            Assert.Equal(parameters, trainer.Parameters);
        }
        Assert.Equal(spec.DropLast ? 3 : 4, schedule.BatchesPerEpoch);
    }

    [Fact]
    public void MiniBatchJobs_RefuseTheSplit_AndWorkersTheLastBatchCannotShard()
    {
        var spec = Spec(OptimizerSpec.Sgd);

        var split = Assert.Throws<SpecException>(() => (spec with { Parallelism = Parallelism.SplitFirstLayer }).Validate());
        Assert.Equal("parallel", split.Field);
        Assert.Contains("--parallel data", split.Message);
        // 50 = 3 x 16 + 2: a last batch of 2 samples cannot be sharded over 3 workers.
        var workers = Assert.Throws<SpecException>(() => (spec with { Workers = 3 }).Validate());
        Assert.Equal("workers", workers.Field);
        Assert.Contains("--drop-last", workers.Message);
        var batch = Assert.Throws<SpecException>(() => (spec with { Batch = 51 }).Validate());
        Assert.Equal("batch", batch.Field);
        Assert.Equal(Parallelism.Data, (spec with { Workers = 2 }).WithPreferredParallelism().Parallelism);
    }
}
