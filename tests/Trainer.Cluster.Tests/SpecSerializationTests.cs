using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A job's spec crosses Orleans through its surrogates (SpecSurrogates.cs) with every field intact,
/// the optimizer's included: a field a surrogate forgot would silently come back as its default.
/// </summary>
public sealed class SpecSerializationTests
{
    // Every field differs from its default, so a dropped one cannot pass as equal.
    private static readonly TrainingSpec Spec = new()
    {
        Model = new ModelSpec([20, 8, 3], Activation.Tanh, LossKind.Mse, bias: true),
        LearningRate = 3e-4,
        Batch = 13,
        Steps = 500,
        Workers = 3,
        Seed = 7,
        Init = InitKind.Xavier,
        Engine = Engine.Autograd,
        GradientPenalty = 0.25,
        Precision = Precision.Float32,
        Parallelism = Parallelism.SplitFirstLayer,
        Optimizer = new OptimizerSpec
        {
            Kind = OptimizerKind.AdamW,
            Momentum = 0.8,
            Beta1 = 0.85,
            Beta2 = 0.99,
            Eps = 1e-6,
            WeightDecay = 0.01,
            Schedule = ScheduleKind.Step,
            WarmupSteps = 20,
            StepEvery = 100,
            Gamma = 0.5,
        },
        CheckpointEvery = 50,
        CheckpointMinSeconds = 2.5,
        ValidationSamples = 12,
        EarlyStopping = 4,
    };

    private static IServiceProvider Services => new ServiceCollection().AddSerializer().BuildServiceProvider();

    [Fact]
    public void ATrainingSpecWithANonDefaultOptimizer_SurvivesTheSerializer_FieldForField()
    {
        var serializer = Services.GetRequiredService<Serializer>();

        var back = serializer.Deserialize<TrainingSpec>(serializer.SerializeToArray(Spec))!;

        Assert.Equal(Spec.Optimizer, back.Optimizer);
        Assert.Equal(Spec, back);
    }

    [Fact]
    public void ASubmission_CarriesItsOptimizerThroughTheSerializer_AndTheCopier()
    {
        var submission = Jobs.Synthetic(Spec);
        var serializer = Services.GetRequiredService<Serializer>();
        var copier = Services.GetRequiredService<DeepCopier>();

        Assert.Equal(Spec, serializer.Deserialize<JobSubmission>(serializer.SerializeToArray(submission))!.Spec);
        Assert.Equal(Spec, copier.Copy(submission).Spec);
    }

    [Fact]
    public void ACheckpointsEarlyStoppingStateAndBestParameters_SurviveTheSerializer()
    {
        var serializer = Services.GetRequiredService<Serializer>();
        var stopping = new EarlyStopping(Patience: 4, BestStep: 30, BestLoss: 0.125, Since: 2);
        var state = new ParameterState(Spec, 50, TensorPayload.From([1.0, 2.0]), UploadedData: true, stopping, TensorPayload.From([3.0, 4.0]));

        var back = serializer.Deserialize<ParameterState>(serializer.SerializeToArray(state))!;

        Assert.Equal(stopping, back.Stopping);
        Assert.Equal([3.0, 4.0], back.Best!.ToArray());
        Assert.Equal(Spec, back.Spec);
    }

    [Fact]
    public void TheDefaultSpec_ComesBackWithPlainSgd()
    {
        var serializer = Services.GetRequiredService<Serializer>();

        var back = serializer.Deserialize<TrainingSpec>(serializer.SerializeToArray(new TrainingSpec()))!;

        Assert.Equal(OptimizerSpec.Sgd, back.Optimizer);
    }
}
