using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Optim;

namespace Trainer.Core.Training;

/// <summary>How a model's gradient is computed.</summary>
public enum Engine
{
    /// <summary>The hand-derived batched backward pass (<see cref="Mlp"/>).</summary>
    Hand,
    /// <summary>The reverse-mode autograd engine.</summary>
    Autograd,
}

/// <summary>How a job's work is divided among its workers.</summary>
public enum Parallelism
{
    /// <summary>Each worker computes a shard of the batch with a cache of all parameters; the parameter server applies the optimizer (the default).</summary>
    Data,
    /// <summary>
    /// Each worker owns a slice of the first layer's units and computes them for the whole batch;
    /// the (small) layers above run on every worker. With the managed GEMM, bit-identical to 1 data-parallel
    /// worker with the batch as one micro-shard (<c>--micro-shards 1</c>)
    /// for any worker count.
    /// See <see cref="FirstLayerSplit{T}"/>.
    /// </summary>
    SplitFirstLayer,
}

/// <summary>Element type of parameters, activations and gradients.</summary>
public enum Precision
{
    /// <summary>IEEE double, the default; the numpy reference runs in it.</summary>
    Float64,
    /// <summary>IEEE single: half the bytes on the wire and in GEMMs; hand engine only.</summary>
    Float32,
}

/// <summary>
/// Everything that defines a training job except its data and initial weights, with the seed's
/// defaults. <see cref="Validate"/> checks every field once and names the first bad one.
/// </summary>
public sealed record TrainingSpec
{
    public ModelSpec Model { get; init; } = ModelSpec.Seed;
    public double LearningRate { get; init; } = 1e-5;
    /// <summary>Samples per step: a mini-batch of <see cref="Samples"/>, or all of them (the seed's full-batch descent).</summary>
    public int Batch { get; init; } = 64;
    /// <summary>
    /// The training data's sample count, which the steps go through in epochs of shuffled
    /// mini-batches of <see cref="Batch"/> (<see cref="Data.BatchSchedule"/>). 0: the data is the batch,
    /// and every step trains on all of it, in order (the seed's full-batch descent).
    /// </summary>
    public int Samples { get; init; }
    /// <summary>
    /// Rows after the training samples in the job's data that are its test set (0: none). The
    /// parameter server scores its parameters on them at the end of every epoch and after the last
    /// step; they are never trained on.
    /// </summary>
    public int TestSamples { get; init; }
    /// <summary>
    /// Rows after the training samples (and before the test set) in the job's data that are its
    /// validation set (0: none): held out of the training rows by <c>--val-fraction</c>
    /// (<see cref="Data.ValidationSplit"/>), scored when the test set is, never trained on.
    /// </summary>
    public int ValidationSamples { get; init; }
    /// <summary>
    /// Early stopping's patience (<c>--early-stopping P</c>; 0: off): the job stops once P evaluations
    /// in a row have not lowered the validation loss, and its final weights are those of the lowest
    /// (<see cref="Training.EarlyStopping"/>). Needs a validation set.
    /// </summary>
    public int EarlyStopping { get; init; }
    /// <summary>Also score the held-out sets every this many steps (<c>--eval-every</c>; 0: only after each epoch and the last step).</summary>
    public int EvalEvery { get; init; }
    /// <summary>Drop an epoch's last batch when it would hold fewer than <see cref="Batch"/> samples (<c>--drop-last</c>); kept by default, as PyTorch's DataLoader does.</summary>
    public bool DropLast { get; init; }
    public int Steps { get; init; } = 3000;
    public int Workers { get; init; } = 2;
    public int Seed { get; init; }
    public InitKind Init { get; init; } = InitKind.Normal;
    public Engine Engine { get; init; } = Engine.Hand;
    /// <summary>Weight λ of the input-gradient penalty λ·Σ‖∂loss/∂x‖² (0 = off); needs the autograd engine.</summary>
    public double GradientPenalty { get; init; }
    /// <summary>Element type of the training arithmetic; float32 needs the hand engine. Stored parameters stay float64 (widening is exact).</summary>
    public Precision Precision { get; init; } = Precision.Float64;
    /// <summary>How the work is divided among the workers (<c>--parallel data|split</c>).</summary>
    public Parallelism Parallelism { get; init; } = Parallelism.Data;
    /// <summary>The update rule and learning-rate schedule the parameter server applies (<c>--optimizer</c>, <c>--lr-schedule</c>, ...).</summary>
    public OptimizerSpec Optimizer { get; init; } = OptimizerSpec.Sgd;
    /// <summary>
    /// Parameter-server shards of a data-parallel job (<c>--ps-shards</c>): each owns a contiguous range
    /// of the flat parameters and its optimizer state and applies the optimizer to it. 0: automatic
    /// (<see cref="ResolvedParameterServerShards"/>).
    /// </summary>
    public int ParameterServerShards { get; init; }

    /// <summary>
    /// Micro-shards per batch of a data-parallel job (<c>--micro-shards</c>; 0: automatic,
    /// <see cref="ResolvedMicroShards"/>). Each batch is cut into this many fixed sample ranges; workers
    /// own whole micro-shards and sums run over a fixed tree of them (<see cref="MicroShards"/>), so a
    /// job's weights are the same bits for every worker count up to this one.
    /// </summary>
    public int MicroShards { get; init; }

    /// <summary>Most micro-shards under the automatic rule: enough for 1 to 4 workers to give the same bits.</summary>
    public const int AutoMicroShards = 4;
    /// <summary>Fewest samples in a micro-shard under the automatic rule (below it, the per-micro-shard GEMMs' fixed costs show).</summary>
    public const int AutoMicroShardSamples = 32;
    /// <summary>Largest <see cref="MicroShards"/> a job may ask for.</summary>
    public const int MaxMicroShards = MaxWorkers;

    /// <summary>
    /// The micro-shard count the job runs with: the given one, or automatically one per
    /// <see cref="AutoMicroShardSamples"/> samples of the batch, from 1 to <see cref="AutoMicroShards"/>
    /// (the seed's batch of 64: 2; 128 and more: 4), raised to the worker count when there are more
    /// workers (each owns at least one). A batch smaller than this (an epoch's last) is cut into one
    /// micro-shard per sample.
    /// </summary>
    public int ResolvedMicroShards => MicroShards > 0 ? MicroShards : Math.Max(AutoMicroShardCount, Workers);

    /// <summary>The automatic rule's micro-shard count before the worker count: one per <see cref="AutoMicroShardSamples"/> samples of the batch, from 1 to <see cref="AutoMicroShards"/>.</summary>
    public int AutoMicroShardCount => Math.Clamp(Batch / AutoMicroShardSamples, 1, AutoMicroShards);

    /// <summary>Parameters per shard under the automatic rule: one shard per started 2^24 (16.8M; 128 MB in float64, 384 MB with Adam's state).</summary>
    public const int AutoShardParameters = 1 << 24;
    /// <summary>Largest <see cref="ParameterServerShards"/> a job may ask for.</summary>
    public const int MaxParameterServerShards = 64;

    /// <summary>
    /// The shard count the job runs with: the given one, or automatically one shard for plain SGD
    /// (it keeps no state to spread) and otherwise one per started <see cref="AutoShardParameters"/>
    /// parameters, at most 16. Sharding never changes the bits (the optimizers are element-wise).
    /// </summary>
    public int ResolvedParameterServerShards()
    {
        if (ParameterServerShards > 0) return ParameterServerShards;
        if (Optimizer.StateSlots == 0) return 1;
        long count = ParameterLayout.For(Model).Count;
        return (int)Math.Clamp((count + AutoShardParameters - 1) / AutoShardParameters, 1, 16);
    }

    /// <summary>
    /// This spec with an automatic shard count (0) made a count for a cluster of <paramref name="silos"/> silos:
    /// one on a single silo, else <see cref="ResolvedParameterServerShards"/>; a given count, or a split job, as it is.
    /// </summary>
    /// <remarks>
    /// NOTE: shards spread the optimizer state over silos. On one silo they share its memory, hold more of
    /// it (their ranges' copies) and keep the workers from computing at the server's parameters in place
    /// (a step team, which needs the server to hold them), so they cost time and memory there and spread
    /// nothing (docs/performance.md has the figures). The bits are the same either way.
    /// </remarks>
    public TrainingSpec ForCluster(int silos) => ParameterServerShards != 0 || Parallelism != Parallelism.Data ? this
        : this with { ParameterServerShards = silos <= 1 ? 1 : ResolvedParameterServerShards() };

    /// <summary>
    /// The GEMM kernel every product of the job runs on, on every silo (<see cref="Blas.Kernel"/>'s label,
    /// chosen at submission by <see cref="Blas.ForJob"/>, kept in its checkpoints); null: each process's own,
    /// <see cref="Blas.Default"/> (a job trained in one process, or submitted by an older build).
    /// </summary>
    public string? Gemm { get; init; }

    /// <summary>
    /// A checkpoint (parameters after step k) is written every this many steps; a job whose
    /// parameter server is lost replays from the latest one. 0 keeps only the initial checkpoint.
    /// </summary>
    public int CheckpointEvery { get; init; } = 100;

    /// <summary>
    /// The least training time, in seconds, between two checkpoints: a multiple of
    /// <see cref="CheckpointEvery"/> steps is a checkpoint only once this long has passed since the
    /// last one (0: every multiple is). Where the checkpoints fall changes no bits (a replay from any
    /// of them gives the same); it bounds their cost when steps are short: the seed job's 100 steps
    /// take ~0.1 s, and with a checkpoint at each its job silo allocated 828 MB over a 30k-step job,
    /// almost all of it large-object heap, and ran 91 full collections; with one a second, 172 MB
    /// and 22 (2 silos, data parallel, dotnet-counters; two passes an hour apart, not an A/B).
    /// </summary>
    public double CheckpointMinSeconds { get; init; } = DefaultCheckpointMinSeconds;

    /// <summary>Default of <see cref="CheckpointMinSeconds"/>: a lost parameter server replays at most this much training time, plus K steps.</summary>
    public const double DefaultCheckpointMinSeconds = 1.0;
    /// <summary>Largest <see cref="CheckpointMinSeconds"/> a job may ask for: one day.</summary>
    public const double MaxCheckpointMinSeconds = 86_400;

    /// <summary>Largest step count a job may ask for.</summary>
    public const int MaxSteps = 100_000_000;
    /// <summary>Largest worker count a job may ask for.</summary>
    public const int MaxWorkers = 1024;
    /// <summary>
    /// Largest batch a job may ask for (2^24 samples). A smaller model-dependent bound also holds:
    /// batch x the widest layer (inputs included) must fit one array (<see cref="MaxBatchFor"/>).
    /// </summary>
    public const int MaxBatch = 1 << 24;

    /// <summary>
    /// The most parameters a job may have: the float64 parameters travel and are stored as one .NET array of at
    /// most <see cref="Array.MaxLength"/> bytes (each optimizer-state slot as another).
    /// </summary>
    public static long MaxParameters => Array.MaxLength / sizeof(double);

    /// <summary>
    /// The most parameters that fit one array of <paramref name="valueBytes"/>-byte values beside <paramref name="optimizer"/>'s
    /// state values for each: where the parameters and the state travel together, in a split job's model state
    /// (its workers' shares merged, in the job's precision) and in a parameter-server shard's range (float64).
    /// </summary>
    public static long MaxParametersWithState(OptimizerSpec optimizer, int valueBytes) => Array.MaxLength / valueBytes / (1 + optimizer.StateSlots);

    /// <summary>
    /// The largest batch whose largest per-step buffer (batch x the widest layer, inputs included,
    /// in values of <paramref name="precision"/>) fits one .NET array of <see cref="Array.MaxLength"/> bytes.
    /// </summary>
    public static int MaxBatchFor(ModelSpec model, Precision precision)
    {
        long widest = model.LayerSizes.Max();
        long valueBytes = precision == Precision.Float32 ? sizeof(float) : sizeof(double);
        return (int)Math.Min(MaxBatch, Array.MaxLength / checked(widest * valueBytes));
    }

    /// <summary>The samples the batches are drawn from (<see cref="Samples"/>, or the batch when 0).</summary>
    public int ResolvedSamples => Samples == 0 ? Batch : Samples;

    /// <summary>
    /// Whether the job scores its parameters on its held-out sets (validation, test) after
    /// <paramref name="step"/>: at every epoch's end, every <see cref="EvalEvery"/> steps, and after the
    /// last step. Without mini-batches every step takes all the data and so ends an epoch, as in Keras
    /// or Lightning with one batch an epoch. Called after every step: it makes no schedule.
    /// </summary>
    public bool EvaluatesAfter(int step) =>
        HeldOutSamples > 0 && (step == Steps || step % Data.BatchSchedule.BatchesIn(ResolvedSamples, Batch, DropLast) == 0 || EvalEvery > 0 && step % EvalEvery == 0);

    /// <summary>The rows after the training samples that the job scores and never trains on: the validation set's, then the test set's.</summary>
    public int HeldOutSamples => ValidationSamples + TestSamples;

    /// <summary>Whether the steps go through the data in mini-batches (rather than all of it at every step).</summary>
    public bool MiniBatches => ResolvedSamples > Batch;

    /// <summary>Which rows each step trains on: every worker and the parameter server build their own.</summary>
    public Data.BatchSchedule Schedule() => new(ResolvedSamples, Batch, DropLast, Seed);

    /// <summary>Throws <see cref="SpecException"/> naming the first field that is not allowed.</summary>
    public TrainingSpec Validate()
    {
        if (!double.IsFinite(LearningRate) || LearningRate <= 0)
            throw new SpecException("lr", LearningRate, "allowed: a finite number greater than 0, e.g. 1e-5");
        if (Optimizer is null)
            throw new SpecException("optimizer", null, "allowed: sgd, momentum, nesterov, adam, adamw");
        if (Batch <= 0)
            throw new SpecException("batch", Batch, "allowed: a whole number of samples greater than 0");
        if (Batch > MaxBatch)
            throw new SpecException("batch", Batch, $"allowed: a whole number of samples from 1 to {MaxBatch}");
        if (Steps <= 0 || Steps > MaxSteps)
            throw new SpecException("steps", Steps, $"allowed: a whole number from 1 to {MaxSteps}");
        if (Workers <= 0 || Workers > MaxWorkers)
            throw new SpecException("workers", Workers, $"allowed: a whole number from 1 to {MaxWorkers}");
        if (!Enum.IsDefined(Parallelism))
            throw new SpecException("parallel", (int)Parallelism, "allowed: data, split");
        if (TestSamples < 0)
            throw new SpecException("test-samples", TestSamples, "allowed: a whole number of test rows >= 0");
        if (ValidationSamples < 0)
            throw new SpecException("val-samples", ValidationSamples, "allowed: a whole number of validation rows >= 0 (--val-fraction sets it)");
        if (EarlyStopping < 0)
            throw new SpecException("early-stopping", EarlyStopping, "allowed: a whole number of evaluations >= 1 without a better validation loss before the job stops (0: off)");
        if (EarlyStopping > 0 && ValidationSamples == 0)
            throw new SpecException("early-stopping", EarlyStopping, "allowed only with a validation set (--val-fraction f above 0): it watches the validation loss");
        if (EvalEvery < 0)
            throw new SpecException("eval-every", EvalEvery, "allowed: a whole number of steps >= 0 (0: after each epoch and the last step)");
        if (Samples < 0 || Samples > 0 && Samples < Batch)
            throw new SpecException("batch", Batch, $"allowed: at most the data's {Samples} samples");
        if (Workers > Batch)
            throw new SpecException("workers", Workers, $"allowed: at most one worker per sample, so at most the batch size {Batch}");
        // NOTE: the epoch's last batch is sharded over the workers like the others.
        if (MiniBatches && Schedule().LastBatch < Workers)
            throw new SpecException("workers", Workers, $"allowed: at most one worker per sample of every batch; an epoch of {Samples} samples in batches of {Batch} ends with a batch of {Schedule().LastBatch} (--drop-last drops it)");
        if (MicroShards < 0 || MicroShards > MaxMicroShards)
            throw new SpecException("micro-shards", MicroShards, $"allowed: a whole number from 0 (automatic) to {MaxMicroShards}");
        if (MicroShards > 0 && MicroShards < Workers)
            throw new SpecException("micro-shards", MicroShards, $"allowed: at least the {Workers} workers (each owns whole micro-shards), or 0 (automatic)");
        if (MicroShards > Batch)
            throw new SpecException("micro-shards", MicroShards, $"allowed: at most the batch of {Batch} samples (a micro-shard holds at least one)");
        if (Parallelism == Parallelism.SplitFirstLayer)
        {
            if (MicroShards > 0)
                throw new SpecException("micro-shards", MicroShards, "allowed only with --parallel data (a split job's workers share units, not samples)");
            if (Model.LayerCount < 2)
                throw new SpecException("parallel", "split", $"allowed only for a model with a hidden layer; {Model} has none");
            if (Workers > Model.LayerSizes[1])
                throw new SpecException("workers", Workers, $"allowed: at most one worker per unit of the first layer, so at most {Model.LayerSizes[1]} with --parallel split");
            if (Engine != Engine.Hand)
                throw new SpecException("parallel", "split", "allowed only with --engine hand (the split runs the hand-derived layers)");
            if (MiniBatches)
                throw new SpecException("parallel", "split", $"allowed only when every step trains on all the data; with mini-batches of {Batch} of {Samples} samples use --parallel data");
            if (ValidationSamples > 0)
                throw new SpecException("parallel", "split", "allowed only without a validation set (--val-fraction): a split job's workers hold its parameters, and only the parameter server of a data-parallel job scores them; use --parallel data");
            if (EvalEvery > 0)
                throw new SpecException("eval-every", EvalEvery, "allowed only with --parallel data: a split job's workers hold its parameters, so its test set is scored once, after its last step");
        }
        Optimizer.Validate(Steps);
        // NOTE: checked here, not where the model state is put together: past these bounds the job's first
        // checkpoint would fail it, after its data was loaded and its first steps were taken.
        long parameters = ParameterLayout.For(Model).Count;
        if (parameters > MaxParameters)
            throw new SpecException("model", Model.Architecture,
                $"the model has {parameters} parameters ({parameters * sizeof(double) >> 20} MB as float64); they must fit one array of {Array.MaxLength >> 20} MB, so at most {MaxParameters} parameters are allowed");
        int valueBytes = Precision == Precision.Float32 ? sizeof(float) : sizeof(double);
        if (Parallelism == Parallelism.SplitFirstLayer && Optimizer.StateSlots > 0 && parameters > MaxParametersWithState(Optimizer, valueBytes))
            throw new SpecException("model", Model.Architecture,
                $"the model has {parameters} parameters, and {Optimizer.Name} keeps {Optimizer.StateSlots} state value(s) for each; a split job merges its workers' shares of both "
                + $"({(1L + Optimizer.StateSlots) * parameters * valueBytes >> 20} MB as {Precision.ToString().ToLowerInvariant()}) into one array of at most {Array.MaxLength >> 20} MB, "
                + $"so with --parallel split and {Optimizer.Name} at most {MaxParametersWithState(Optimizer, valueBytes)} parameters are allowed (--parallel data: {MaxParameters})");
        if (ParameterServerShards < 0 || ParameterServerShards > MaxParameterServerShards)
            throw new SpecException("ps-shards", ParameterServerShards, $"allowed: a whole number from 0 (automatic) to {MaxParameterServerShards}");
        if (ParameterServerShards > parameters)
            throw new SpecException("ps-shards", ParameterServerShards, $"allowed: at most one shard per parameter, so at most {parameters} for {Model}");
        if (ParameterServerShards > 1 && Parallelism == Parallelism.SplitFirstLayer)
            throw new SpecException("ps-shards", ParameterServerShards, "allowed only with --parallel data (a split job's workers each own their slice and its optimizer state)");
        long shardMost = MaxParametersWithState(Optimizer, sizeof(double));
        if (ParameterServerShards > 1 && (parameters + ParameterServerShards - 1) / ParameterServerShards > shardMost)
            throw new SpecException("ps-shards", ParameterServerShards,
                $"a shard loads its range of the parameters and of {Optimizer.Name}'s {Optimizer.StateSlots} state value(s) for each in one float64 array of at most {Array.MaxLength >> 20} MB, "
                + $"so it holds at most {shardMost} of the model's {parameters} parameters; allowed: 0 (automatic), 1 (one parameter server) or at least {(parameters + shardMost - 1) / shardMost}");
        if (CheckpointEvery < 0)
            throw new SpecException("checkpoint-every", CheckpointEvery, "allowed: a whole number of steps >= 0 (0 = only the initial checkpoint)");
        if (!double.IsFinite(CheckpointMinSeconds) || CheckpointMinSeconds < 0 || CheckpointMinSeconds > MaxCheckpointMinSeconds)
            throw new SpecException("checkpoint-min-seconds", CheckpointMinSeconds, $"allowed: a number of seconds from 0 to {MaxCheckpointMinSeconds:0} (0 = a checkpoint at every multiple of checkpoint-every)");
        if (!double.IsFinite(GradientPenalty) || GradientPenalty < 0)
            throw new SpecException("gradient-penalty", GradientPenalty, "allowed: a finite number >= 0 (0 turns it off)");
        if (GradientPenalty > 0 && Engine != Engine.Autograd)
            throw new SpecException("gradient-penalty", GradientPenalty, "allowed only with --engine autograd (it needs double backward)");
        if (!Enum.IsDefined(Precision))
            throw new SpecException("precision", (int)Precision, "allowed: float64, float32");
        if (Precision == Precision.Float32 && (Engine != Engine.Hand || GradientPenalty > 0))
            throw new SpecException("precision", "float32", "float32 needs --engine hand (the autograd engine and the gradient penalty are float64 only)");
        // NOTE: a batch past this bound overflows the first step's buffers (batch x inputs values in one
        // array) on every worker, and each retry fails the same way; refuse it here instead.
        int maxBatch = MaxBatchFor(Model, Precision);
        if (Batch > maxBatch)
            throw new SpecException("batch", Batch, $"allowed: at most {maxBatch} samples for {Model.Architecture} in {Precision.ToString().ToLowerInvariant()} (batch x widest layer must fit one array of {Array.MaxLength} bytes)");
        return this;
    }

    /// <summary><c>--parallel</c>: data, split, or auto (null: <see cref="WithPreferredParallelism"/> chooses).</summary>
    public static Parallelism? ParseParallelism(string? value, string field = "parallel") => value?.Trim().ToLowerInvariant() switch
    {
        "auto" => null,
        "data" => Parallelism.Data,
        "split" => Parallelism.SplitFirstLayer,
        _ => throw new SpecException(field, value, "allowed: auto, data, split"),
    };

    /// <summary>
    /// The layers above the first may hold at most this share of the parameters for
    /// <see cref="WithPreferredParallelism"/> to split the first layer: every split worker runs them
    /// on the whole batch.
    /// </summary>
    public const double SplitUpperShareLimit = 0.10;

    /// <summary>
    /// This spec with the parallelism that suits its model (<c>--parallel auto</c>, only when asked
    /// for: the CLI's default, like this API's, is data): split the first layer when there are
    /// several workers, the hand engine, all the data in every step, no validation set, a hidden layer with at least one unit per worker, and the
    /// layers above it hold at most <see cref="SplitUpperShareLimit"/> of the parameters (the seed's
    /// 1000-100-10: 1%); data parallelism otherwise (job 3's 784-1024-1024-10: 57% above the first layer).
    /// </summary>
    /// <remarks>
    /// Decided from the spec alone, never from the cluster, so a job's bits do not depend on where it
    /// runs. Measured (docs/performance.md, run E): the seed job splits 1.60x numpy embedded and
    /// 1.21x over two silo processes, against 1.16x and 0.57x with data parallelism; with the managed
    /// GEMM a split job's weights are a one-worker, one-micro-shard job's, bit for bit, for any worker count.
    /// </remarks>
    public TrainingSpec WithPreferredParallelism()
    {
        // Only the split's own limits are checked here; every other rule is Validate's, and holds either way.
        bool split = Workers > 1 && Engine == Engine.Hand && !MiniBatches && ValidationSamples == 0 && EvalEvery == 0 && Model.LayerCount >= 2
            && Workers <= Model.LayerSizes[1] && UpperShare(Model) <= SplitUpperShareLimit;
        return this with { Parallelism = split ? Parallelism.SplitFirstLayer : Parallelism.Data };
    }

    private static double UpperShare(ModelSpec model)
    {
        var layout = ParameterLayout.For(model);
        return (double)(layout.Count - layout.Weight(2).Offset) / layout.Count;
    }

    public static Engine ParseEngine(string? value, string field = "engine") => value?.Trim().ToLowerInvariant() switch
    {
        "hand" => Engine.Hand,
        "autograd" => Engine.Autograd,
        _ => throw new SpecException(field, value, "allowed: hand, autograd"),
    };
}
