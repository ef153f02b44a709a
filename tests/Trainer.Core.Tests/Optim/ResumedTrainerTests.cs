using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Core.Tests.Optim;

/// <summary>
/// A LocalTrainer rebuilt from a checkpoint (parameters, optimizer state, k steps completed) ends
/// with the bits of an uninterrupted run: losses, parameters and state, for Adam and momentum, data
/// and split parallelism, float64 and float32. The step number drives the schedule and Adam's bias
/// correction, so nothing else needs saving.
/// </summary>
public class ResumedTrainerTests
{
    private const int Steps = 9, Resume = 4;

    public static TheoryData<OptimizerKind, Parallelism, Precision> Jobs
    {
        get
        {
            var jobs = new TheoryData<OptimizerKind, Parallelism, Precision>();
            foreach (var kind in new[] { OptimizerKind.Adam, OptimizerKind.Momentum, OptimizerKind.AdamW, OptimizerKind.Nesterov })
                foreach (var parallelism in new[] { Parallelism.Data, Parallelism.SplitFirstLayer })
                    foreach (var precision in new[] { Precision.Float64, Precision.Float32 })
                        jobs.Add(kind, parallelism, precision);
            return jobs;
        }
    }

    [Theory]
    [MemberData(nameof(Jobs))]
    public void AResumedTrainer_EndsWithTheBitsOfAnUninterruptedOne(OptimizerKind kind, Parallelism parallelism, Precision precision)
    {
        var spec = new TrainingSpec
        {
            Model = new ModelSpec([20, 9, 3], Activation.Tanh, LossKind.Mse, bias: true),
            Batch = 10, Workers = 3, Steps = Steps, LearningRate = 0.01, Parallelism = parallelism, Precision = precision,
            Optimizer = new OptimizerSpec { Kind = kind, WeightDecay = 0.01, Schedule = ScheduleKind.Cosine, WarmupSteps = 2 },
        };
        var data = Synthetic.Data(spec.Batch, 20, 3, seed: 5);
        var initial = Initializer.Create(ParameterLayout.For(spec.Model), InitKind.Normal, seed: 6);

        var whole = new LocalTrainer(spec, data, (double[])initial.Clone());
        var losses = Enumerable.Range(0, Steps).Select(_ => whole.Step()).ToArray();
        Assert.Equal(Steps, whole.StepsCompleted);

        var first = new LocalTrainer(spec, data, (double[])initial.Clone());
        for (int t = 0; t < Resume; t++) first.Step();
        var resumed = new LocalTrainer(spec, data, (double[])first.Parameters.Clone(), optimizerState: (double[])first.OptimizerState.Clone(), stepsCompleted: first.StepsCompleted);
        var resumedLosses = Enumerable.Range(Resume, Steps - Resume).Select(_ => resumed.Step()).ToArray();

        Assert.Equal(losses[Resume..], resumedLosses);
        Assert.Equal(whole.Parameters, resumed.Parameters);
        Assert.Equal(whole.OptimizerState, resumed.OptimizerState);
        Assert.Equal(spec.Optimizer.StateSlots * initial.Length, whole.OptimizerState.Length);
        Assert.Contains(whole.OptimizerState, v => v != 0);
    }

    [Fact]
    public void ATrainer_RefusesAStateOfTheWrongLength_NamingTheOptimizer()
    {
        var spec = new TrainingSpec { Model = new ModelSpec([4, 3, 2]), Batch = 4, Workers = 1, Steps = 3, Optimizer = new OptimizerSpec { Kind = OptimizerKind.Momentum } };
        var data = Synthetic.Data(4, 4, 2, seed: 0);
        var parameters = new double[ParameterLayout.For(spec.Model).Count];
        var e = Assert.Throws<ArgumentException>(() => new LocalTrainer(spec, data, parameters, optimizerState: new double[3]));
        Assert.Contains($"momentum keeps 1 state value(s) per parameter: the state has 3 values for {parameters.Length} parameters", e.Message);
    }
}
