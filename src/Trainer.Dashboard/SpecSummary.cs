using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Dashboard;

/// <summary>What a job trains and how: the "spec" of GET /api/jobs/{id}, spelled as the CLI's options are.</summary>
public sealed record SpecSummary(
    string Model,
    string Architecture,
    string Activation,
    string Loss,
    bool Bias,
    int Batch,
    int Steps,
    double LearningRate,
    string Optimizer,
    string LrSchedule,
    int WarmupSteps,
    string Engine,
    string Precision,
    string Parallelism,
    int Workers,
    int ParameterServerShards,
    int CheckpointEvery,
    int Seed,
    int ValidationSamples,
    int TestSamples,
    int EarlyStopping,
    string? Gemm)
{
    /// <remarks>
    /// <see cref="ParameterServerShards"/> is the count the job runs with (0 for a split job, which has none);
    /// <see cref="Gemm"/> the kernel every product of the job runs on (null for a job submitted by an older build).
    /// </remarks>
    public static SpecSummary Of(TrainingSpec s) => new(
        s.Model.ToString(), s.Model.Architecture, s.Model.Activation.Name(), s.Model.Loss.Name(), s.Model.Bias,
        s.Batch, s.Steps, s.LearningRate, s.Optimizer.Name, JobStatusView.Lower(s.Optimizer.Schedule), s.Optimizer.WarmupSteps,
        JobStatusView.Lower(s.Engine), JobStatusView.Lower(s.Precision), JobStatusView.ParallelismName(s.Parallelism), s.Workers,
        s.Parallelism == Trainer.Core.Training.Parallelism.Data ? s.ResolvedParameterServerShards() : 0, s.CheckpointEvery, s.Seed,
        s.ValidationSamples, s.TestSamples, s.EarlyStopping, s.Gemm);
}
