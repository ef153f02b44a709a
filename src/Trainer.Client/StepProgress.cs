namespace Trainer.Client;

/// <summary>
/// One step of a watched job, as the progress displays show it. <see cref="Elapsed"/> and
/// <see cref="StepsPerSecond"/> are the job's own (its training time, as in the final line), so the
/// display and the summary agree. <see cref="Epoch"/>, <see cref="TotalEpochs"/>, <see cref="Accuracy"/>
/// (the latest on the test set) and <see cref="ValidationAccuracy"/> are null unless the job runs in
/// epochs and evaluates; a display shows them when set.
/// </summary>
internal sealed record StepProgress(int Step, int TotalSteps, double Loss, TimeSpan Elapsed, double StepsPerSecond)
{
    public int? Epoch { get; init; }
    public int? TotalEpochs { get; init; }
    public double? Accuracy { get; init; }
    public double? ValidationAccuracy { get; init; }

    /// <summary>The time left at the job's rate so far; null before the rate is known.</summary>
    public TimeSpan? Remaining => StepsPerSecond > 0 ? TimeSpan.FromSeconds(Math.Max(0, TotalSteps - Step) / StepsPerSecond) : null;
}
