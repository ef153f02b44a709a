using Trainer.Core.Training;

namespace Trainer.Core.Tests.Validation;

/// <summary>
/// When a job scores its held-out sets: after every epoch's last step, every --eval-every N steps, and
/// after its last step; a job that takes all its data every step ends an epoch every step.
/// </summary>
public sealed class EvaluationScheduleTests
{
    private static int[] Scored(TrainingSpec spec) => [.. Enumerable.Range(1, spec.Steps).Where(spec.EvaluatesAfter)];

    [Fact]
    public void MiniBatches_AreScoredAfterEachEpochsLastStep_AndTheJobsLast()
    {
        // 100 samples in batches of 32: 4 steps an epoch (the last of 4 samples); 10 steps end in the third epoch.
        var spec = new TrainingSpec { Samples = 100, Batch = 32, Steps = 10, TestSamples = 7 };
        Assert.Equal([4, 8, 10], Scored(spec));
        Assert.Equal([3, 6, 9, 10], Scored(spec with { DropLast = true }));
    }

    [Fact]
    public void EvalEvery_AddsItsSteps_ToTheEpochEnds()
        => Assert.Equal([3, 4, 6, 8, 9, 10], Scored(new TrainingSpec { Samples = 100, Batch = 32, Steps = 10, TestSamples = 7, EvalEvery = 3 }));

    [Fact]
    public void AFullBatchJob_EndsAnEpochEveryStep_AndIsScoredEveryStep()
    {
        Assert.Equal([1, 2, 3, 4, 5], Scored(new TrainingSpec { Batch = 48, Steps = 5, ValidationSamples = 16 }));
        Assert.Equal([1, 2, 3], Scored(new TrainingSpec { Batch = 1400, Steps = 3, TestSamples = 397 }));
    }

    [Fact]
    public void AJobWithoutHeldOutRows_IsNeverScored()
        => Assert.Empty(Scored(new TrainingSpec { Samples = 100, Batch = 32, Steps = 10, EvalEvery = 2 }));
}
