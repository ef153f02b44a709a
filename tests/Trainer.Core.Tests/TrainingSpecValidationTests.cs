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
        { "early-stopping without a validation set", new TrainingSpec { EarlyStopping = 3 }, "early-stopping: '3'" },        { "a validation set on a split job", new TrainingSpec { ValidationSamples = 5, Parallelism = Parallelism.SplitFirstLayer }, "parallel: 'split'" },
        { "eval-every on a split job (it scores its test set once)", new TrainingSpec { TestSamples = 5, EvalEvery = 2, Parallelism = Parallelism.SplitFirstLayer }, "eval-every: '2'" },
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
    [InlineData(Trainer.Core.Optim.OptimizerKind.Sgd)]
    [InlineData(Trainer.Core.Optim.OptimizerKind.Momentum)]
    [InlineData(Trainer.Core.Optim.OptimizerKind.Adam)]
    [InlineData(Trainer.Core.Optim.OptimizerKind.AdamW)]
    public void Validate_BoundsTheParametersByOneArray_WhateverStateTheOptimizerKeeps(Trainer.Core.Optim.OptimizerKind kind)
    {
        // The optimizer's state slots travel and are stored as tensors of their own, so only the parameters must fit one array.
        const int most = 268_435_448;
        Assert.Equal(most, TrainingSpec.MaxParameters);
        Job(kind, most).Validate();

        var e = Assert.Throws<SpecException>(() => Job(kind, most + 1).Validate());
        Assert.Equal("model", e.Field);
        Assert.Contains($"the model has {most + 1} parameters (2047 MB as float64); they must fit one array", e.Message);
        Assert.Contains($"at most {most} parameters are allowed", e.Message);
    }

    [Theory]
    [InlineData(Trainer.Core.Optim.OptimizerKind.Momentum, Precision.Float64, 134_217_724)]
    [InlineData(Trainer.Core.Optim.OptimizerKind.Adam, Precision.Float64, 89_478_482)]
    [InlineData(Trainer.Core.Optim.OptimizerKind.Adam, Precision.Float32, 178_956_965)]
    public void Validate_BoundsASplitJobsParametersSoThatItsMergedModelStateFitsOneArray(Trainer.Core.Optim.OptimizerKind kind, Precision precision, int most)
    {
        // A 1-H-1 model without biases has 2H parameters: the widest such model within the bound, and one unit wider.
        TrainingSpec Split(int hidden) => new()
        {
            Model = new ModelSpec([1, hidden, 1]), Batch = 1, Workers = 1, Optimizer = new() { Kind = kind },
            Parallelism = Parallelism.SplitFirstLayer, Precision = precision,
        };
        int hidden = most / 2;
        Split(hidden).Validate();

        var e = Assert.Throws<SpecException>(() => Split(hidden + 1).Validate());
        Assert.Equal("model", e.Field);
        Assert.Contains($"the model has {2L * (hidden + 1)} parameters", e.Message);
        Assert.Contains($"a split job merges its workers' shares of both", e.Message);
        Assert.Contains($"so with --parallel split and {kind.ToString().ToLowerInvariant()} at most {most} parameters are allowed (--parallel data: 268435448)", e.Message);
        // Plain SGD keeps no state: a split job may have as many parameters as any.
        (Split(hidden + 1) with { Optimizer = new() { Kind = Trainer.Core.Optim.OptimizerKind.Sgd } }).Validate();
    }

    [Fact]
    public void Validate_BoundsAGivenShardCountSoThatEachShardsRangeAndItsAdamStateFitOneArray()
    {
        // 200M parameters with adam: a shard's range and its m and v in one float64 array hold at most 89,478,482 parameters.
        var job = Job(Trainer.Core.Optim.OptimizerKind.Adam, 200_000_000);
        job.Validate();
        (job with { ParameterServerShards = 3 }).Validate();

        var e = Assert.Throws<SpecException>(() => (job with { ParameterServerShards = 2 }).Validate());
        Assert.Equal("ps-shards", e.Field);
        Assert.Equal("2", e.Value);
        Assert.Contains("so it holds at most 89478482 of the model's 200000000 parameters; allowed: 0 (automatic), 1 (one parameter server) or at least 3", e.Message);
    }

    // A 1-N model without biases has exactly N parameters; a batch of one keeps its N outputs within one array.
    private static TrainingSpec Job(Trainer.Core.Optim.OptimizerKind kind, int parameters) =>
        new() { Model = new ModelSpec([1, parameters]), Batch = 1, Workers = 1, Optimizer = new() { Kind = kind } };

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
