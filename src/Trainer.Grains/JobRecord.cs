using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// What a job grain writes to grain storage: its status, the checkpoint (model state after step k),
/// the losses up to it that no sealed chunk holds and, once the job is over, the final model state.
/// Only the job grain writes it, and it rewrites it at every checkpoint, so its size must not grow
/// with the step count: the losses live in chunks of <see cref="LossChunkSteps"/> steps
/// (<see cref="LossChunk"/>, each written once) and the record keeps only those after the last
/// full chunk.
/// </summary>
[GenerateSerializer, Alias("trainer.job-record")]
public sealed class JobRecord
{
    [Id(0)] public JobStatus? Status { get; set; }

    /// <summary>The losses of the steps after the <see cref="SealedLossChunks"/> chunks (all of them in a record without chunks).</summary>
    [Id(1)] public byte[] Losses { get; set; } = [];

    /// <summary>
    /// The final model state's parameters when they fit one chunk (otherwise <see cref="StoredFinalParameters"/> says
    /// where they are), after the status's steps; its optimizer-state slots are <see cref="FinalSlots"/>, so a job can
    /// resume from it. A record from before the slots went apart holds them here after the parameters
    /// (<see cref="ModelState.Apart"/>); one from before model states, the parameters alone. Whoever hands out
    /// weights takes the parameters off the front either way.
    /// </summary>
    [Id(2)] public TensorPayload? FinalParameters { get; set; }

    /// <summary>
    /// The latest checkpoint; its parameters are null when at a seeded start, or when <see cref="StoredCheckpointParameters"/>
    /// says where they are. A finished job keeps it only when it has no final model state to resume from.
    /// </summary>
    [Id(3)] public ParameterState? Checkpoint { get; set; }

    /// <summary>Losses per chunk, fixed for the job when it is submitted (0 in a record from before chunks: no chunks).</summary>
    [Id(4)] public int LossChunkSteps { get; set; }

    /// <summary>How many chunks of losses storage holds for this record: steps 1 to <see cref="SealedLossChunks"/> x <see cref="LossChunkSteps"/>.</summary>
    [Id(5)] public int SealedLossChunks { get; set; }

    /// <summary>The checkpoint's parameters when they went to storage in chunks (larger than one chunk; see <see cref="StoredTensors"/>).</summary>
    [Id(6)] public StoredTensor? StoredCheckpointParameters { get; set; }

    /// <summary>The final model state's parameters when they went to storage in chunks.</summary>
    [Id(7)] public StoredTensor? StoredFinalParameters { get; set; }

    /// <summary>SHA-256 of the uploaded samples (null: synthetic data), which a job resuming this one must match.</summary>
    [Id(8)] public string? DataChecksum { get; set; }

    /// <summary>The job's evaluations on its held-out sets so far, in step order (one per set and epoch: small).</summary>
    [Id(9)] public EvalRecord[] Evals { get; set; } = [];

    /// <summary>The checkpoint's early-stopping best parameters (<see cref="ParameterState.Best"/>) when they went to storage in chunks.</summary>
    [Id(10)] public StoredTensor? StoredCheckpointBest { get; set; }

    /// <summary>The final model state's optimizer-state slots, with <see cref="FinalParameters"/> (null: none, or stored with <see cref="StoredFinalSlots"/>).</summary>
    [Id(11)] public TensorPayload[]? FinalSlots { get; set; }

    /// <summary>The final model state's optimizer-state slots when they went to storage in chunks (with <see cref="StoredFinalParameters"/>).</summary>
    [Id(12)] public StoredTensor[]? StoredFinalSlots { get; set; }

    /// <summary>The checkpoint's optimizer-state slots when they went to storage in chunks (with <see cref="StoredCheckpointParameters"/>).</summary>
    [Id(13)] public StoredTensor[]? StoredCheckpointSlots { get; set; }
}

/// <summary>The losses of <see cref="JobRecord.LossChunkSteps"/> consecutive steps, stored once under the job grain's id (see <see cref="StoredLosses"/>).</summary>
[GenerateSerializer, Alias("trainer.loss-chunk")]
public sealed class LossChunk
{
    [Id(0)] public byte[] Losses { get; set; } = [];
}

/// <summary>A job's uploaded samples, stored once at submission, apart from the record that is rewritten at every checkpoint.</summary>
[GenerateSerializer, Alias("trainer.job-data")]
public sealed class JobData
{
    /// <summary>The samples, or only their sizes when they went to storage in chunks (<see cref="StoredInputs"/>, <see cref="StoredTargets"/>).</summary>
    [Id(0)] public DatasetPayload? Data { get; set; }

    [Id(1)] public StoredTensor? StoredInputs { get; set; }

    [Id(2)] public StoredTensor? StoredTargets { get; set; }
}
