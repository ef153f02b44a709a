using System.Security.Cryptography;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// Whether a submission may resume a finished job (<see cref="JobSubmission.ResumeFrom"/>); every
/// refusal names the field <c>resume</c>, the job's id and what would be allowed.
/// </summary>
/// <remarks>
/// A resumed job runs the steps after the old job's on the same model state, data and spec, so it
/// ends with the bits of one job run to the new total from the start, as long as the learning rate
/// does not depend on the horizon. NOTE: cosine annealing's horizon is the spec's
/// <see cref="TrainingSpec.Steps"/>, so a resumed cosine job follows the NEW horizon from the resumed
/// step on: it is not the job that would have run longer (constant and step schedules are).
/// </remarks>
internal static class ResumeChecks
{
    public const string Field = "resume";

    // The fields that must be equal, in the order a difference is reported (CLI spellings).
    private static readonly (string Name, Func<TrainingSpec, object> Of)[] Fields =
    [
        ("model", s => s.Model), ("lr", s => s.LearningRate), ("batch", s => s.Batch), ("workers", s => s.Workers),
        ("seed", s => s.Seed), ("init", s => s.Init), ("engine", s => s.Engine), ("gradient-penalty", s => s.GradientPenalty),
        ("precision", s => s.Precision), ("parallel", s => s.Parallelism), ("optimizer", s => s.Optimizer.Name),
        ("momentum", s => s.Optimizer.Momentum), ("beta1", s => s.Optimizer.Beta1), ("beta2", s => s.Optimizer.Beta2),
        ("eps", s => s.Optimizer.Eps), ("weight-decay", s => s.Optimizer.WeightDecay), ("lr-schedule", s => s.Optimizer.Schedule),
        ("warmup-steps", s => s.Optimizer.WarmupSteps), ("lr-step-every", s => s.Optimizer.StepEvery), ("lr-gamma", s => s.Optimizer.Gamma),
    ];

    /// <summary>The old job as it stands: it must have ended with a model state to continue from.</summary>
    public static void CheckJob(string from, ResumePoint point)
    {
        var status = point.Status;
        if (status.State == JobState.Unknown)
            throw Refuse(from, $"no job with id '{from}' is known to this cluster; name a finished job (see `trainer list`)");
        if (!status.IsTerminal)
            throw Refuse(from, $"job {from} is still {status.State.ToString().ToLowerInvariant()} (step {status.StepsCompleted}); wait for it to end, or cancel it, then resume it");
        if (status.State == JobState.Diverged)
            throw Refuse(from, $"job {from} diverged ({status.Message}); its model state is not finite, so there is nothing to continue");
        if (point.State is null || point.Losses is null)
            throw Refuse(from, $"job {from} ended without a final model state or a checkpoint to continue from");
    }

    /// <summary>The new submission against the old job's spec, steps and data.</summary>
    public static void CheckSubmission(string from, ResumePoint point, TrainingSpec spec, string? dataChecksum)
    {
        var old = point.Status.Spec!;
        if (old.EarlyStopping > 0)
            throw Refuse(from, $"job {from} ran with --early-stopping {old.EarlyStopping}: it kept its best step's weights, not the state after its last step, so there is nothing to continue; start a new job (--init npy:DIR takes its saved weights)");
        foreach (var (name, of) in Fields)
            if (!Equals(of(old), of(spec)))
                throw Refuse(from, $"the job to resume has {name} {Show(of(old))}; this one {Show(of(spec))}. Only --steps, --checkpoint-every and --checkpoint-min-seconds may differ");
        // The shard count is the cluster's choice when automatic, and never changes the bits; the GEMM kernel is
        // the cluster's choice too, made after these checks (it keeps the old job's where it can: GemmKernels).
        if (old with { Steps = spec.Steps, CheckpointEvery = spec.CheckpointEvery, CheckpointMinSeconds = spec.CheckpointMinSeconds, ParameterServerShards = spec.ParameterServerShards, Gemm = spec.Gemm } != spec)
            throw Refuse(from, "the spec differs from the job to resume's in more than --steps, --checkpoint-every and --checkpoint-min-seconds");
        int done = point.State!.StepsCompleted;
        if (spec.Steps <= done)
            throw Refuse(from, $"job {from} stands at step {done}, so --steps (the new total) must be greater than {done}; it is {spec.Steps}");
        if (point.DataChecksum != dataChecksum)
            throw Refuse(from, (point.DataChecksum, dataChecksum) switch
            {
                ({ } before, _) when before.StartsWith(SiloPrefix, StringComparison.Ordinal) =>
                    $"job {from} read its data on the silos ({before[SiloPrefix.Length..]}); pass the same --data, --test and --scale with --data-on-silos",
                (_, { } now) when now.StartsWith(SiloPrefix, StringComparison.Ordinal) =>
                    point.DataChecksum is null ? $"job {from} trained on synthetic data; drop --data" : $"job {from} trained on uploaded data; pass the same --data without --data-on-silos",
                (null, _) => $"job {from} trained on synthetic data; drop --data",
                (_, null) => $"job {from} trained on uploaded data; pass the same --data again",
                _ => $"the uploaded data differ from those job {from} trained on (SHA-256 {dataChecksum![..12]}... against {point.DataChecksum![..12]}...); pass the same --data",
            });
    }

    /// <summary>The old job's model state must carry its optimizer's state (a record from before model states kept the parameters alone).</summary>
    public static void CheckModelState(string from, TrainingSpec spec, ParameterState state)
    {
        if (state.ModelState is { Slots.Length: 0 } && spec.Optimizer.StateSlots > 0)
            throw Refuse(from, $"job {from} kept only its parameters, not {spec.Optimizer.Name}'s state (a record from before model states); only an sgd job can resume from it");
    }

    private const string SiloPrefix = "silos:";

    /// <summary>
    /// What identifies a submission's data: SHA-256 of uploaded samples, inputs then targets; for data on
    /// the silos, "silos:" and where it is read from (the files are not read here); null: synthetic data.
    /// </summary>
    public static string? Checksum(JobSubmission submission) =>
        submission.SiloData is { } onSilos ? $"{SiloPrefix}{onSilos.Data}|test {onSilos.Test}|scale {onSilos.Scale?.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}"
        : Checksum(submission.Data);

    /// <summary>SHA-256 of uploaded samples, inputs then targets, and of how the inputs are held when not as float64 (null: synthetic data).</summary>
    public static string? Checksum(DatasetPayload? data)
    {
        if (data is null) return null;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        if (data.Storage is { } storage)
        {
            hash.AppendData(BitConverter.GetBytes(storage.Type));
            if (storage.ByteValues is { } table) hash.AppendData(table.Bytes);
        }
        hash.AppendData(data.X.Bytes);
        hash.AppendData(data.Y.Bytes);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static JobRejectedException Refuse(string from, string message) => new(Field, from, $"{Field}: {message}");

    private static string Show(object value) => value switch
    {
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        Parallelism.SplitFirstLayer => "split",
        Enum e => e.ToString().ToLowerInvariant(),
        _ => value.ToString() ?? "",
    };
}
