using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Abstractions;

// The core's TrainingSpec/ModelSpec carry no Orleans attributes (the core has no Orleans
// reference), so they travel as these surrogates. Enums go as ints with stable meanings.

[GenerateSerializer, Alias("trainer.model-spec")]
public struct ModelSpecSurrogate
{
    [Id(0)] public int[] LayerSizes;
    [Id(1)] public int Activation;
    [Id(2)] public int Loss;
    [Id(3)] public bool Bias;
}

[RegisterConverter]
public sealed class ModelSpecConverter : IConverter<ModelSpec, ModelSpecSurrogate>
{
    public ModelSpec ConvertFromSurrogate(in ModelSpecSurrogate s) =>
        new(s.LayerSizes, (Activation)s.Activation, (LossKind)s.Loss, s.Bias);

    public ModelSpecSurrogate ConvertToSurrogate(in ModelSpec value) => new()
    {
        LayerSizes = [.. value.LayerSizes],
        Activation = (int)value.Activation,
        Loss = (int)value.Loss,
        Bias = value.Bias,
    };
}

[GenerateSerializer, Alias("trainer.training-spec")]
public struct TrainingSpecSurrogate
{
    [Id(0)] public ModelSpec Model;
    [Id(1)] public double LearningRate;
    [Id(2)] public int Batch;
    [Id(3)] public int Steps;
    [Id(4)] public int Workers;
    [Id(5)] public int Seed;
    [Id(6)] public int Init;
    [Id(7)] public int Engine;
    [Id(8)] public double GradientPenalty;
    [Id(9)] public int CheckpointEvery;
    // NOTE: absent in messages from older builds, so it decodes as 0 = Float64, the old behaviour.
    [Id(10)] public int Precision;
    // NOTE: absent in messages from older builds, so it decodes as 0 = Data, the old behaviour.
    [Id(11)] public int Parallelism;
    // NOTE: absent in messages from older builds, so it decodes as 0 = a checkpoint at every multiple, the old behaviour.
    [Id(12)] public double CheckpointMinSeconds;
    // NOTE: absent in messages from older builds, so it decodes as null = plain SGD, the old behaviour.
    [Id(13)] public OptimizerSpec? Optimizer;
    // NOTE: absent in messages from older builds, so it decodes as 0 = automatic.
    [Id(14)] public int ParameterServerShards;
    // NOTE: absent in messages from older builds, so they decode as 0 = one full batch per step, and keep the last batch.
    [Id(15)] public int Samples;
    [Id(16)] public bool DropLast;
    // NOTE: absent in messages from older builds, so it decodes as 0 = no test set.
    [Id(17)] public int TestSamples;
    [Id(18)] public int EvalEvery;
    // NOTE: absent in messages from older builds, so it decodes as 0 = automatic.
    [Id(19)] public int MicroShards;
    // NOTE: absent in messages from older builds, so they decode as 0 = no validation set, no early stopping.
    [Id(20)] public int ValidationSamples;
    [Id(21)] public int EarlyStopping;
    // NOTE: absent in messages from older builds, so it decodes as null = each process's own kernel, the old behaviour.
    [Id(22)] public string? Gemm;
}

[RegisterConverter]
public sealed class TrainingSpecConverter : IConverter<TrainingSpec, TrainingSpecSurrogate>
{
    public TrainingSpec ConvertFromSurrogate(in TrainingSpecSurrogate s) => new()
    {
        Model = s.Model,
        LearningRate = s.LearningRate,
        Batch = s.Batch,
        Steps = s.Steps,
        Workers = s.Workers,
        Seed = s.Seed,
        Init = (InitKind)s.Init,
        Engine = (Engine)s.Engine,
        GradientPenalty = s.GradientPenalty,
        CheckpointEvery = s.CheckpointEvery,
        CheckpointMinSeconds = s.CheckpointMinSeconds,
        Precision = (Precision)s.Precision,
        Parallelism = (Parallelism)s.Parallelism,
        Optimizer = s.Optimizer ?? OptimizerSpec.Sgd,
        ParameterServerShards = s.ParameterServerShards,
        Samples = s.Samples,
        DropLast = s.DropLast,
        TestSamples = s.TestSamples,
        EvalEvery = s.EvalEvery,
        MicroShards = s.MicroShards,
        ValidationSamples = s.ValidationSamples,
        EarlyStopping = s.EarlyStopping,
        Gemm = s.Gemm,
    };

    public TrainingSpecSurrogate ConvertToSurrogate(in TrainingSpec value) => new()
    {
        Model = value.Model,
        LearningRate = value.LearningRate,
        Batch = value.Batch,
        Steps = value.Steps,
        Workers = value.Workers,
        Seed = value.Seed,
        Init = (int)value.Init,
        Engine = (int)value.Engine,
        GradientPenalty = value.GradientPenalty,
        CheckpointEvery = value.CheckpointEvery,
        CheckpointMinSeconds = value.CheckpointMinSeconds,
        Precision = (int)value.Precision,
        Parallelism = (int)value.Parallelism,
        Optimizer = value.Optimizer,
        ParameterServerShards = value.ParameterServerShards,
        Samples = value.Samples,
        DropLast = value.DropLast,
        TestSamples = value.TestSamples,
        EvalEvery = value.EvalEvery,
        MicroShards = value.MicroShards,
        ValidationSamples = value.ValidationSamples,
        EarlyStopping = value.EarlyStopping,
        Gemm = value.Gemm,
    };
}

[GenerateSerializer, Alias("trainer.optimizer-spec")]
public struct OptimizerSpecSurrogate
{
    [Id(0)] public int Kind;
    [Id(1)] public double Momentum;
    [Id(2)] public double Beta1;
    [Id(3)] public double Beta2;
    [Id(4)] public double Eps;
    [Id(5)] public double WeightDecay;
    [Id(6)] public int Schedule;
    [Id(7)] public int WarmupSteps;
    [Id(8)] public int StepEvery;
    [Id(9)] public double Gamma;
}

[RegisterConverter]
public sealed class OptimizerSpecConverter : IConverter<OptimizerSpec, OptimizerSpecSurrogate>
{
    public OptimizerSpec ConvertFromSurrogate(in OptimizerSpecSurrogate s) => new()
    {
        Kind = (OptimizerKind)s.Kind,
        Momentum = s.Momentum,
        Beta1 = s.Beta1,
        Beta2 = s.Beta2,
        Eps = s.Eps,
        WeightDecay = s.WeightDecay,
        Schedule = (ScheduleKind)s.Schedule,
        WarmupSteps = s.WarmupSteps,
        StepEvery = s.StepEvery,
        Gamma = s.Gamma,
    };

    public OptimizerSpecSurrogate ConvertToSurrogate(in OptimizerSpec value) => new()
    {
        Kind = (int)value.Kind,
        Momentum = value.Momentum,
        Beta1 = value.Beta1,
        Beta2 = value.Beta2,
        Eps = value.Eps,
        WeightDecay = value.WeightDecay,
        Schedule = (int)value.Schedule,
        WarmupSteps = value.WarmupSteps,
        StepEvery = value.StepEvery,
        Gamma = value.Gamma,
    };
}

[GenerateSerializer, Alias("trainer.early-stopping")]
public struct EarlyStoppingSurrogate
{
    [Id(0)] public int Patience;
    [Id(1)] public int BestStep;
    [Id(2)] public double BestLoss;
    [Id(3)] public int Since;
}

[RegisterConverter]
public sealed class EarlyStoppingConverter : IConverter<EarlyStopping, EarlyStoppingSurrogate>
{
    public EarlyStopping ConvertFromSurrogate(in EarlyStoppingSurrogate s) => new(s.Patience, s.BestStep, s.BestLoss, s.Since);

    public EarlyStoppingSurrogate ConvertToSurrogate(in EarlyStopping value) => new()
    {
        Patience = value.Patience,
        BestStep = value.BestStep,
        BestLoss = value.BestLoss,
        Since = value.Since,
    };
}
