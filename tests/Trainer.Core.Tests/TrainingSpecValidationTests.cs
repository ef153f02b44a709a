using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>Validate names the first bad field, its value and what is allowed.</summary>
public class TrainingSpecValidationTests
{
    [Fact]
    public void Defaults_AreTheSeedJobAndValid()
    {
        var spec = new TrainingSpec().Validate();
        Assert.Equal("1000-100-10", spec.Model.Architecture);
        Assert.Equal((1e-5, 64, 3000), (spec.LearningRate, spec.Batch, spec.Steps));
    }

    public static TheoryData<string, TrainingSpec, string> BadSpecs() => new()
    {
        { "lr 0", new TrainingSpec { LearningRate = 0 }, "lr: '0'" },
        { "lr negative", new TrainingSpec { LearningRate = -1e-3 }, "lr: '-0.001'" },
        { "lr NaN", new TrainingSpec { LearningRate = double.NaN }, "lr: 'NaN'" },
        { "lr +Inf", new TrainingSpec { LearningRate = double.PositiveInfinity }, "lr: 'Infinity'" },
        { "lr -Inf", new TrainingSpec { LearningRate = double.NegativeInfinity }, "lr: '-Infinity'" },
        { "batch 0", new TrainingSpec { Batch = 0 }, "batch: '0'" },
        { "batch -1", new TrainingSpec { Batch = -1 }, "batch: '-1'" },
        { "batch over MaxBatch", new TrainingSpec { Batch = TrainingSpec.MaxBatch + 1 }, $"batch: '{TrainingSpec.MaxBatch + 1}'" },
        { "batch 100M (the issue's)", new TrainingSpec { Batch = 100_000_000 }, "batch: '100000000'" },
        { "batch x inputs past one array", new TrainingSpec { Batch = 300_000 }, "batch: '300000'" },
        { "steps 0", new TrainingSpec { Steps = 0 }, "steps: '0'" },
        { "steps too many", new TrainingSpec { Steps = TrainingSpec.MaxSteps + 1 }, $"steps: '{TrainingSpec.MaxSteps + 1}'" },
        { "workers 0", new TrainingSpec { Workers = 0 }, "workers: '0'" },
        { "workers too many", new TrainingSpec { Workers = TrainingSpec.MaxWorkers + 1, Batch = 100_000 }, $"workers: '{TrainingSpec.MaxWorkers + 1}'" },
        { "workers > batch", new TrainingSpec { Workers = 65 }, "workers: '65'" },
        { "penalty negative", new TrainingSpec { GradientPenalty = -0.5 }, "gradient-penalty: '-0.5'" },
        { "penalty NaN", new TrainingSpec { GradientPenalty = double.NaN, Engine = Engine.Autograd }, "gradient-penalty: 'NaN'" },
        { "penalty without autograd", new TrainingSpec { GradientPenalty = 0.1 }, "gradient-penalty: '0.1'" },
        { "checkpoint-every negative", new TrainingSpec { CheckpointEvery = -1 }, "checkpoint-every: '-1'" },
        { "checkpoint-min-seconds negative", new TrainingSpec { CheckpointMinSeconds = -0.5 }, "checkpoint-min-seconds: '-0.5'" },
        { "checkpoint-min-seconds NaN", new TrainingSpec { CheckpointMinSeconds = double.NaN }, "checkpoint-min-seconds: 'NaN'" },
        { "checkpoint-min-seconds +Inf", new TrainingSpec { CheckpointMinSeconds = double.PositiveInfinity }, "checkpoint-min-seconds: 'Infinity'" },
        { "checkpoint-min-seconds over a day", new TrainingSpec { CheckpointMinSeconds = 86_401 }, "checkpoint-min-seconds: '86401'" },
        { "val-samples negative", new TrainingSpec { ValidationSamples = -1 }, "val-samples: '-1'" },
        { "early-stopping negative", new TrainingSpec { EarlyStopping = -2, ValidationSamples = 5 }, "early-stopping: '-2'" },
        { "early-stopping without a validation set", new TrainingSpec { EarlyStopping = 3 }, "early-stopping: '3'" },
        { "a validation set on a split job", new TrainingSpec { ValidationSamples = 5, Parallelism = Parallelism.SplitFirstLayer }, "parallel: 'split'" },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public void Validate_RejectsBadField_NamingFieldAndValue(string because, TrainingSpec spec, string expectedStart)
    {
        var e = Assert.Throws<SpecException>(() => spec.Validate());
        Assert.True(e.Message.StartsWith(expectedStart, StringComparison.Ordinal), $"{because}: message was \"{e.Message}\"");
        Assert.Equal(expectedStart[..expectedStart.IndexOf(':')], e.Field);
        Assert.Contains("allowed", e.Message);
    }

    [Fact]
    public void Validate_SaysWhyWorkersMayNotExceedTheBatch()
    {
        var e = Assert.Throws<SpecException>(() => new TrainingSpec { Workers = 65 }.Validate());
        Assert.Contains("at most the batch size 64", e.Message);
    }

    [Fact]
    public void Validate_AcceptsAGradientPenaltyWithTheAutogradEngine()
        => new TrainingSpec { GradientPenalty = 0.1, Engine = Engine.Autograd }.Validate();

    [Fact]
    public void Validate_BoundsTheBatchByTheWidestLayerAndPrecision()
    {
        // Seed 1000-100-10: its widest layer is the 1000 inputs; float64 values are 8 bytes.
        int max64 = Array.MaxLength / (1000 * 8);
        Assert.Equal(max64, TrainingSpec.MaxBatchFor(ModelSpec.Seed, Precision.Float64));
        new TrainingSpec { Batch = max64 }.Validate();
        var e = Assert.Throws<SpecException>(() => new TrainingSpec { Batch = max64 + 1 }.Validate());
        Assert.Equal("batch", e.Field);
        Assert.Contains($"allowed: at most {max64} samples for 1000-100-10 in float64 (batch x widest layer must fit one array", e.Message);

        // float32 halves the bytes, so the same batch fits.
        new TrainingSpec { Batch = max64 + 1, Precision = Precision.Float32 }.Validate();
    }

    [Theory]
    [InlineData(Trainer.Core.Optim.OptimizerKind.Sgd, 268_435_448, "they must fit one array")]
    [InlineData(Trainer.Core.Optim.OptimizerKind.Momentum, 134_217_724, "momentum keeps 1 state value(s) for each; a checkpoint holds both")]
    [InlineData(Trainer.Core.Optim.OptimizerKind.Nesterov, 134_217_724, "nesterov keeps 1 state value(s)")]
    [InlineData(Trainer.Core.Optim.OptimizerKind.Adam, 89_478_482, "adam keeps 2 state value(s) for each; a checkpoint holds both")]
    [InlineData(Trainer.Core.Optim.OptimizerKind.AdamW, 89_478_482, "adamw keeps 2 state value(s)")]
    public void Validate_BoundsTheParametersSoThatTheParametersAndOptimizerStateFitOneArray(Trainer.Core.Optim.OptimizerKind kind, int most, string says)
    {
        // A 1-N model without biases has exactly N parameters; a batch of one keeps its N outputs within one array.
        TrainingSpec Job(int parameters) => new() { Model = new ModelSpec([1, parameters]), Batch = 1, Workers = 1, Optimizer = new() { Kind = kind } };
        Assert.Equal(most, TrainingSpec.MaxParametersFor(new() { Kind = kind }));
        Job(most).Validate();

        var e = Assert.Throws<SpecException>(() => Job(most + 1).Validate());
        Assert.Equal("model", e.Field);
        Assert.Contains($"the model has {most + 1} parameters", e.Message);
        Assert.Contains(says, e.Message);
        Assert.Contains($"at most {most} parameters are allowed", e.Message);
    }

    [Fact]
    public void AnAutomaticShardCount_IsOneOnASingleSilo_AndTheParameterRuleOnSeveral_WhileAGivenCountOrASplitJobStaysAsItIs()
    {
        // 20M parameters with adam: two shards by the rule of one per started 2^24.
        var adam = new TrainingSpec { Model = new ModelSpec([2000, 10000, 10]), Optimizer = new() { Kind = Trainer.Core.Optim.OptimizerKind.Adam } };
        Assert.Equal(2, adam.ResolvedParameterServerShards());

        Assert.Equal(1, adam.ForCluster(1).ParameterServerShards);
        Assert.Equal(2, adam.ForCluster(2).ParameterServerShards);
        Assert.Equal(2, adam.ForCluster(5).ParameterServerShards);
        Assert.Equal(1, new TrainingSpec { Model = adam.Model }.ForCluster(3).ParameterServerShards);
        Assert.Equal(4, (adam with { ParameterServerShards = 4 }).ForCluster(1).ParameterServerShards);
        Assert.Equal(0, (adam with { Parallelism = Parallelism.SplitFirstLayer }).ForCluster(1).ParameterServerShards);
        // Everything else is the spec as given.
        Assert.Equal(adam, adam.ForCluster(2) with { ParameterServerShards = 0 });
    }

    [Fact]
    public void MaxBatchFor_UsesAHiddenLayerWiderThanTheInputs()
    {
        var model = new ModelSpec([4, 1 << 20, 2]);
        Assert.Equal(Array.MaxLength / ((1 << 20) * 8), TrainingSpec.MaxBatchFor(model, Precision.Float64));
        Assert.Equal(TrainingSpec.MaxBatch, TrainingSpec.MaxBatchFor(new ModelSpec([4, 8, 2]), Precision.Float64));
    }
}
