using Trainer.Abstractions;
using Trainer.Core.Training;

namespace Trainer.Dashboard;

/// <summary>
/// A job's status as the dashboard shows it: a row of GET /api/jobs, and the "status" of GET /api/jobs/{id}.
/// Losses that are not finite (a diverged job's last) are written as null: JSON has no NaN.
/// <see cref="BestStep"/> and <see cref="StoppedEarly"/>: a job with early stopping's best step (whose
/// weights are its final ones) and whether it stopped early; null without early stopping.
/// </summary>
public sealed record JobStatusView(
    string Id,
    string State,
    int StepsCompleted,
    int TotalSteps,
    double FirstLoss,
    double LastLoss,
    string Model,
    string Optimizer,
    string Parallelism,
    int Workers,
    string? Message,
    DateTimeOffset? SubmittedAt,
    DateTimeOffset? CompletedAt,
    double TrainingSeconds,
    int CheckpointStep,
    string? ResumedFrom,
    int ResumedAtStep,
    int? BestStep,
    bool? StoppedEarly)
{
    public static JobStatusView Of(JobStatus s) => new(
        s.JobId, Lower(s.State), s.StepsCompleted, s.Spec?.Steps ?? 0, s.FirstLoss, s.LastLoss,
        s.Spec?.Model.ToString() ?? "", s.Spec?.Optimizer.Name ?? "", s.Spec is { } spec ? ParallelismName(spec.Parallelism) : "", s.Spec?.Workers ?? 0,
        s.Message, s.SubmittedAt, s.CompletedAt, s.TrainingSeconds, s.CheckpointStep, s.ResumedFrom, s.ResumedAtStep,
        s.Stopping is { BestStep: > 0 } best ? best.BestStep : null, s.Stopping?.Stopped);

    /// <summary>A job the registry lists but whose grain did not answer (its silo is being replaced, say).</summary>
    public static JobStatusView Unavailable(string id, string error) => new(
        id, "unavailable", 0, 0, double.NaN, double.NaN, "", "", "", 0, error, null, null, 0, 0, null, 0, null, null);

    /// <summary>As the CLI spells it (--parallel): data or split.</summary>
    public static string ParallelismName(Parallelism p) => p == Trainer.Core.Training.Parallelism.SplitFirstLayer ? "split" : "data";

    public static string Lower<TEnum>(TEnum value) where TEnum : struct, Enum => value.ToString().ToLowerInvariant();
}
