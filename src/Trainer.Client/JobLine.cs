using System.Globalization;
using Trainer.Abstractions;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Client;

/// <summary>
/// The line `trainer train` prints as a job starts: the job's sizes, how its workers divide a step
/// and where the optimizer runs, then its data and initial weights. For example:
/// <c>1000-100-10 sigmoid sse, 2 workers, batch 64, 3000 steps, lr 1e-05, engine hand, float64,
/// data parallel, optimizer adam (beta2 0.99, weight decay 0.01) on the parameter server,
/// lr schedule cosine with 100 warm-up steps; data synthetic N(0,1), seed 0; init normal, seed 0</c>.
/// </summary>
internal static class JobLine
{
    public static string Describe(JobSubmission s)
    {
        var spec = s.Spec;
        return $"{spec.Model}, {spec.Workers} workers, {Batches(spec)}, {spec.Steps} steps{Epochs(spec)}{EarlyStopping(spec)}, lr {Number(spec.LearningRate)}, "
            + $"engine {Lower(spec.Engine)}, {Lower(spec.Precision)}, {HowItRuns(spec)}; data {s.DataDescription}; init {s.InitDescription}";
    }

    /// <summary><c>batch 64</c> (all the data at every step), or <c>mini-batches of 128 from 60000 samples (469 an epoch, the last of 96)</c>.</summary>
    public static string Batches(TrainingSpec spec)
    {
        if (!spec.MiniBatches) return $"batch {spec.Batch}";
        var schedule = spec.Schedule();
        var last = schedule.LastBatch != spec.Batch ? $", the last of {schedule.LastBatch}"
            : spec.DropLast && spec.Samples % spec.Batch != 0 ? $", {spec.Samples % spec.Batch} left out each" : "";
        return $"mini-batches of {spec.Batch} from {spec.Samples} samples ({schedule.BatchesPerEpoch} an epoch{last})";
    }

    /// <summary><c> (10 epochs)</c> for a mini-batch job; empty otherwise.</summary>
    private static string Epochs(TrainingSpec spec)
    {
        if (!spec.MiniBatches) return "";
        double epochs = (double)spec.Steps / spec.Schedule().BatchesPerEpoch;
        return $" ({epochs.ToString("0.##", CultureInfo.InvariantCulture)} epoch{(epochs == 1 ? "" : "s")})";
    }

    /// <summary><c>, early stopping after 3 evaluations without a lower validation loss</c>; empty without early stopping.</summary>
    private static string EarlyStopping(TrainingSpec spec) => spec.EarlyStopping == 0 ? ""
        : $", early stopping after {spec.EarlyStopping} evaluation{(spec.EarlyStopping == 1 ? "" : "s")} without a lower validation loss";

    /// <summary>
    /// A note when a data-parallel job has more workers than the automatic micro-shard count and no
    /// --micro-shards: each batch is then cut into one micro-shard per worker, so the weights are not the bits
    /// of the same job on fewer workers (those cut it into the automatic count). Null otherwise.
    /// </summary>
    public static string? MicroShardsNote(TrainingSpec spec)
    {
        int automatic = spec.AutoMicroShardCount;
        if (spec.Parallelism != Parallelism.Data || spec.MicroShards > 0 || spec.Workers <= automatic) return null;
        return $"{spec.Workers} workers cut each batch into {spec.Workers} micro-shards, not the automatic {automatic} (one per "
            + $"{TrainingSpec.AutoMicroShardSamples} samples of the batch, at most {TrainingSpec.AutoMicroShards}), so the weights will not be the bits of this job "
            + (automatic == 1 ? "on 1 worker" : $"on 1 to {automatic} workers") + $"; with --micro-shards {spec.Workers} every worker count from 1 to {spec.Workers} gives this run's bits";
    }

    /// <summary><c>; resumed from job-… at step 500</c> for a job that continues another; empty otherwise.</summary>
    public static string Resumed(JobStatus started) =>
        started.ResumedFrom is { } from ? $"; resumed from {from} at step {started.ResumedAtStep}" : "";

    /// <summary>The parallelism, who applies the optimizer, and the learning-rate schedule if it is not a constant rate.</summary>
    public static string HowItRuns(TrainingSpec spec)
    {
        var optimizer = $"optimizer {Optimizer(spec.Optimizer)}";
        var mode = spec.Parallelism == Parallelism.SplitFirstLayer
            ? $"first layer split over {spec.Workers} workers (model parallel; each worker applies the optimizer to its slice), {optimizer}"
            : spec.ResolvedParameterServerShards() is > 1 and var shards ? $"data parallel, {optimizer} on {shards} parameter-server shards"
            : $"data parallel, {optimizer} on the parameter server";
        return Schedule(spec.Optimizer) is { } schedule ? $"{mode}, {schedule}" : mode;
    }

    /// <summary>The optimizer's name, then the hyper-parameters its rule uses that differ from their defaults: <c>adam (beta2 0.99, weight decay 0.01)</c>.</summary>
    public static string Optimizer(OptimizerSpec o)
    {
        var defaults = OptimizerSpec.Sgd;
        bool momentum = o.Kind is OptimizerKind.Momentum or OptimizerKind.Nesterov;
        bool adam = o.Kind is OptimizerKind.Adam or OptimizerKind.AdamW;
        var changed = new List<string>();
        if (momentum && o.Momentum != defaults.Momentum) changed.Add($"momentum {Number(o.Momentum)}");
        if (adam && o.Beta1 != defaults.Beta1) changed.Add($"beta1 {Number(o.Beta1)}");
        if (adam && o.Beta2 != defaults.Beta2) changed.Add($"beta2 {Number(o.Beta2)}");
        if (adam && o.Eps != defaults.Eps) changed.Add($"eps {Number(o.Eps)}");
        if (o.WeightDecay != defaults.WeightDecay) changed.Add($"weight decay {Number(o.WeightDecay)}");
        return changed.Count == 0 ? o.Name : $"{o.Name} ({string.Join(", ", changed)})";
    }

    /// <summary><c>lr schedule step (gamma 0.5 every 200 steps) with 10 warm-up steps</c>; null for a constant rate without warm-up (the default).</summary>
    public static string? Schedule(OptimizerSpec o)
    {
        if (o.Schedule == ScheduleKind.Constant && o.WarmupSteps == 0) return null;
        var schedule = o.Schedule == ScheduleKind.Step ? $"step (gamma {Number(o.Gamma)} every {Steps(o.StepEvery)})" : Lower(o.Schedule);
        return o.WarmupSteps == 0 ? $"lr schedule {schedule}" : $"lr schedule {schedule} with {o.WarmupSteps} warm-up step{(o.WarmupSteps == 1 ? "" : "s")}";
    }

    /// <summary>Shortest round-trip spelling, with a lower-case exponent: 1e-05, 0.999.</summary>
    public static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e");

    private static string Steps(int n) => n == 1 ? "1 step" : $"{n} steps";

    private static string Lower<TEnum>(TEnum value) where TEnum : struct, Enum => value.ToString().ToLowerInvariant();
}
