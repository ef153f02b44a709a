using Trainer.Core.Optim;

namespace Trainer.Core.Tests.Optim;

/// <summary>
/// The schedules at their edges: the first step, the last warm-up step (exactly lr), the first step
/// after the warm-up (the schedule's start, exactly lr), and the job's last step; values from the
/// formulas in <see cref="LearningRates.At"/>'s documentation, computed here by hand.
/// </summary>
public class LearningRateScheduleTests
{
    private const double Lr = 0.3;
    private const int Steps = 20, Warmup = 4;

    [Fact]
    public void Constant_IsTheSpecsRate_AtEveryStep_AndRampsLinearlyInTheWarmUp()
    {
        var constant = new OptimizerSpec();
        Assert.All(Enumerable.Range(1, Steps), t => Assert.Equal(Lr, LearningRates.At(constant, Lr, Steps, t)));
        var warm = constant with { WarmupSteps = Warmup };
        Assert.Equal(Lr / 4, LearningRates.At(warm, Lr, Steps, 1));
        Assert.Equal(Lr * 0.75, LearningRates.At(warm, Lr, Steps, 3));
        Assert.Equal(Lr, LearningRates.At(warm, Lr, Steps, Warmup));       // t/W = 1 exactly
        Assert.Equal(Lr, LearningRates.At(warm, Lr, Steps, Warmup + 1));
        Assert.Equal(Lr, LearningRates.At(warm, Lr, Steps, Steps));
    }

    [Fact]
    public void Step_MultipliesByGamma_EveryStepEverySteps_AfterTheWarmUp()
    {
        var spec = new OptimizerSpec { Schedule = ScheduleKind.Step, StepEvery = 5, Gamma = 0.5, WarmupSteps = Warmup };
        Assert.Equal(Lr / 4, LearningRates.At(spec, Lr, Steps, 1));
        Assert.Equal(Lr, LearningRates.At(spec, Lr, Steps, Warmup));
        Assert.Equal(Lr, LearningRates.At(spec, Lr, Steps, Warmup + 1));
        Assert.Equal(Lr, LearningRates.At(spec, Lr, Steps, Warmup + 5));        // the 5th step of the period
        Assert.Equal(Lr * 0.5, LearningRates.At(spec, Lr, Steps, Warmup + 6));  // the first after it
        Assert.Equal(Lr * 0.125, LearningRates.At(spec, Lr, Steps, Steps));     // ⌊15/5⌋ = 3 halvings
        var noWarmup = spec with { WarmupSteps = 0 };
        Assert.Equal(Lr, LearningRates.At(noWarmup, Lr, Steps, 1));
        Assert.Equal(Lr * 0.5, LearningRates.At(noWarmup, Lr, Steps, 6));
    }

    [Fact]
    public void Cosine_StartsAtTheRate_AndEndsOneStepShortOfZero_AfterTheWarmUp()
    {
        var spec = new OptimizerSpec { Schedule = ScheduleKind.Cosine, WarmupSteps = Warmup };
        Assert.Equal(Lr / 4, LearningRates.At(spec, Lr, Steps, 1));
        Assert.Equal(Lr, LearningRates.At(spec, Lr, Steps, Warmup));
        Assert.Equal(Lr, LearningRates.At(spec, Lr, Steps, Warmup + 1));   // cos 0 = 1
        // Half-way through the 16 steps after the warm-up: cos(π/2) = 0, so lr/2 (to cos's rounding of π/2).
        Assert.Equal(Lr / 2, LearningRates.At(spec, Lr, Steps, Warmup + 9), 1e-16);
        double last = Lr * (1 + Math.Cos(Math.PI * 15 / 16)) / 2;
        Assert.Equal(last, LearningRates.At(spec, Lr, Steps, Steps));
        Assert.True(last > 0 && last < Lr / 100);
        var noWarmup = spec with { WarmupSteps = 0 };
        Assert.Equal(Lr, LearningRates.At(noWarmup, Lr, Steps, 1));
        Assert.Equal(Lr * (1 + Math.Cos(Math.PI * 19 / 20)) / 2, LearningRates.At(noWarmup, Lr, Steps, Steps));
    }

    [Fact]
    public void AWarmUpAsLongAsTheJob_RampsToTheRateAtTheLastStep()
    {
        var spec = new OptimizerSpec { Schedule = ScheduleKind.Cosine, WarmupSteps = Steps };
        Assert.Equal(Lr / Steps, LearningRates.At(spec, Lr, Steps, 1));
        Assert.Equal(Lr, LearningRates.At(spec, Lr, Steps, Steps));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(Steps + 1)]
    public void AStepOutsideTheJob_IsRefused(int step)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => LearningRates.At(new OptimizerSpec(), Lr, Steps, step));
        Assert.Contains($"from 1 to the job's {Steps}", e.Message);
    }
}
