using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// `--parallel auto` splits the first layer only where that pays and is allowed: several workers,
/// the hand engine, and layers above the first holding at most 10% of the parameters.
/// </summary>
public class PreferredParallelismTests
{
    private static readonly TrainingSpec Seed = new() { Workers = 2 };

    [Fact]
    public void TheSeedModel_IsSplit_ItsUpperLayersHoldOnePercent()
        => Assert.Equal(Parallelism.SplitFirstLayer, Seed.WithPreferredParallelism().Parallelism);

    [Fact]
    public void Job3_StaysDataParallel_ItsUpperLayersHoldMostParameters()
        => Assert.Equal(Parallelism.Data, (Seed with { Model = Model(784, 1024, 1024, 10), Batch = 8192 }).WithPreferredParallelism().Parallelism);

    [Theory]
    [InlineData(1, Engine.Hand, 0.0, "one worker has nothing to split")]
    [InlineData(2, Engine.Autograd, 0.0, "the split runs the hand-derived layers")]
    [InlineData(2, Engine.Autograd, 0.1, "the gradient penalty needs the autograd engine")]
    [InlineData(11, Engine.Hand, 0.0, "more workers than the 10 first-layer units of 1000-10-1")]
    public void WhereTheSplitIsNotAllowedOrUseless_ItStaysDataParallel(int workers, Engine engine, double penalty, string because)
    {
        var spec = Seed with { Model = workers == 11 ? Model(1000, 10, 1) : ModelSpec.Seed, Workers = workers, Engine = engine, GradientPenalty = penalty };
        Assert.True(spec.WithPreferredParallelism().Validate().Parallelism == Parallelism.Data, because);
    }    [Fact]
    public void AJobScoredEveryNSteps_StaysDataParallel_OnlyItsParameterServerScoresAsItGoes()
        => Assert.Equal(Parallelism.Data, (Seed with { TestSamples = 10, EvalEvery = 5 }).WithPreferredParallelism().Validate().Parallelism);

    [Fact]
    public void AModelWithoutAHiddenLayer_StaysDataParallel()
        => Assert.Equal(Parallelism.Data, (Seed with { Model = Model(1000, 10) }).WithPreferredParallelism().Parallelism);

    [Fact]
    public void TheLimitIsTheUpperLayersShareOfTheParameters()
    {
        // 100-10-k: the first layer holds 1000 weights; k = 11 puts 110 above it (9.9%), k = 12 puts 120 (10.7%).
        Assert.Equal(Parallelism.SplitFirstLayer, (Seed with { Model = Model(100, 10, 11) }).WithPreferredParallelism().Parallelism);
        Assert.Equal(Parallelism.Data, (Seed with { Model = Model(100, 10, 12) }).WithPreferredParallelism().Parallelism);
    }

    private static ModelSpec Model(params int[] sizes) => new(sizes, Activation.Sigmoid, LossKind.Sse, bias: false);
}
