using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Training;

namespace Trainer.Abstractions;

/// <summary>
/// Samples as rows: X is (Count x InputSize) values held as <see cref="Storage"/> says (null: float64), Y is
/// (Count x OutputSize) float64 values.
/// </summary>
/// <remarks>
/// The inputs travel as the client's files hold them (<see cref="InputEncoding"/>): IDX
/// pixels as bytes, a float32 file as float32, so the wire and the silos carry an eighth or a half of the
/// float64 bytes, and every reader converts them exactly as the client would have.
/// </remarks>
[GenerateSerializer, Immutable, Alias("trainer.dataset")]
public sealed record DatasetPayload(
    [property: Id(0)] int Count,
    [property: Id(1)] int InputSize,
    [property: Id(2)] int OutputSize,
    [property: Id(3)] TensorPayload X,
    [property: Id(4)] TensorPayload Y,
    [property: Id(5)] InputStorage? Storage = null)
{
    /// <summary>The sizes without the samples (a submission whose samples were uploaded before in chunks).</summary>
    public DatasetPayload WithoutSamples() => this with { X = TensorPayload.Empty, Y = TensorPayload.Empty };

    /// <summary>How X holds the inputs (throws <see cref="SpecException"/> for a storage no reader knows).</summary>
    public InputEncoding Encoding => InputStorage.Decode(Storage);

    /// <summary>The bytes X must have: every row's inputs as <see cref="Storage"/> holds them.</summary>
    public long InputBytes => (long)Count * InputSize * Encoding.Width;

    /// <summary>The bytes Y must have: every row's targets, float64.</summary>
    public long TargetBytes => (long)Count * OutputSize * sizeof(double);

    /// <summary>Every row of <paramref name="rows"/> in one payload, the bytes an upload of them carries (<see cref="SampleBytes"/>).</summary>
    public static DatasetPayload Of(ISampleRows rows) => new(rows.Count, rows.InputSize, rows.OutputSize,
        SampleBytes.Whole(rows, UploadPart.Inputs), SampleBytes.Whole(rows, UploadPart.Targets), InputStorage.Of(rows.InputEncoding));
}

/// <summary>
/// <see cref="InputEncoding"/> on the wire: the stored type's number
/// (<see cref="StoredType"/>) and, for bytes, what each byte stands for (256 float64 values).
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.input-storage")]
public sealed record InputStorage([property: Id(0)] int Type, [property: Id(1)] TensorPayload? ByteValues)
{
    /// <summary>The wire form of <paramref name="encoding"/>; null for float64, which needs none.</summary>
    public static InputStorage? Of(InputEncoding encoding) => encoding.Type switch
    {
        StoredType.Float64 => null,
        StoredType.UInt8 => new((int)encoding.Type, TensorPayload.From(encoding.ByteValues)),
        _ => new((int)encoding.Type, null),
    };

    /// <summary>The encoding <paramref name="storage"/> stands for; a storage no reader knows is refused, naming what is allowed.</summary>
    public static InputEncoding Decode(InputStorage? storage)
    {
        if (storage is null) return InputEncoding.Float64;
        const string allowed = "float64 (0), float32 (1) or uint8 (4) with 256 finite byte values";
        switch ((StoredType)storage.Type)
        {
            case StoredType.Float64 when storage.ByteValues is null:
                return InputEncoding.Float64;
            case StoredType.Float32 when storage.ByteValues is null:
                return InputEncoding.Float32;
            case StoredType.UInt8 when storage.ByteValues is { } table:
                try
                {
                    return InputEncoding.Bytes(table.ValuesOf<double>(256, "the byte table"));
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                {
                    throw new SpecException("data", $"input storage uint8 with {table.Bytes.Length} bytes of byte values", $"{e.Message} Allowed: {allowed}.");
                }
            default:
                throw new SpecException("data", $"input storage {storage.Type}{(storage.ByteValues is null ? "" : " with byte values")}", $"the inputs must be stored as {allowed}");
        }
    }
}

/// <summary>
/// A <see cref="DatasetPayload"/> between grains: its inputs and targets inline when they fit one chunk,
/// otherwise read from the sender. <see cref="Version"/>: the dataset grain's version of the rows it
/// sends (<see cref="IDatasetGrain.GetVersionAsync"/>); 0 in what is sent to it.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.dataset-transfer")]
public sealed record DatasetTransfer(
    [property: Id(0)] int Count,
    [property: Id(1)] int InputSize,
    [property: Id(2)] int OutputSize,
    [property: Id(3)] TensorTransfer X,
    [property: Id(4)] TensorTransfer Y,
    [property: Id(5)] long Version = 0,
    [property: Id(6)] InputStorage? Storage = null);

/// <summary>
/// A job's data that the silos read themselves (<c>--data-on-silos</c>) instead of the client uploading
/// it: <see cref="Data"/> is "npy:DIR" or "idx:DIR" with an absolute DIR that every silo hosting the
/// job's grains can see; <see cref="Test"/> (same form) is a folder whose training files are the test set
/// (null: idx data's t10k files, when DIR has them); <see cref="Scale"/>: idx pixels are bytes × scale
/// (null: bytes / 255). The job's rows are those the client would have uploaded: the training rows,
/// less the validation rows the spec's seed holds out, then those, then the test rows.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.silo-data")]
public sealed record SiloData(
    [property: Id(0)] string Data,
    [property: Id(1)] string? Test,
    [property: Id(2)] double? Scale)
{
    public override string ToString() => Test is null ? Data : $"{Data} (test {Test})";
}

/// <summary>
/// What a silo found in a <see cref="SiloData"/>'s files, checked for a model: the training files'
/// <see cref="Samples"/> (before any validation split), each with <see cref="InputSize"/> inputs and
/// <see cref="OutputSize"/> targets, the test set's <see cref="TestSamples"/> (0: none), and which silo read them.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.silo-data-facts")]
public sealed record SiloDataFacts(
    [property: Id(0)] int Samples,
    [property: Id(1)] int InputSize,
    [property: Id(2)] int OutputSize,
    [property: Id(3)] int TestSamples,
    [property: Id(4)] string Silo);

/// <summary>What a client uploads in chunks ahead of a submission (<see cref="ITrainingJobGrain.StageAsync"/>).</summary>
public enum UploadPart
{
    InitialParameters,
    /// <summary>The samples' inputs (<see cref="DatasetPayload.X"/>).</summary>
    Inputs,
    /// <summary>The samples' targets (<see cref="DatasetPayload.Y"/>).</summary>
    Targets,
}

/// <summary>
/// A job as submitted. <see cref="Data"/> is null for the seed's synthetic data (regenerated from
/// the seed wherever it is needed); <see cref="InitialParameters"/> is null when the spec's
/// <see cref="TrainingSpec.Init"/> generates them, or when they were too large for one message and
/// were uploaded before in chunks (<see cref="StagedInitialBytes"/> of them,
/// <see cref="ITrainingJobGrain.StageAsync"/>; <see cref="TrainingJobs.UploadAndSubmitAsync"/>
/// does both). Samples too large for one message are uploaded the same way: <see cref="StagedData"/>,
/// and <see cref="Data"/> holds only their sizes. The descriptions are for status displays.
/// <see cref="ResumeFrom"/>: the id of a finished job to continue (<see cref="ITrainingJobGrain.GetResumePointAsync"/>):
/// the job starts from its model state and loss history and runs on to <see cref="TrainingSpec.Steps"/>
/// in all; its spec must equal that job's but for the step count and the checkpoint settings, and
/// its data must be the same (uploaded again when that job's were uploaded). Initial parameters are then not used.
/// <see cref="SiloData"/>: the job's data stays on the silos, which read it from the files it names
/// (<see cref="Data"/> is then null).
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.job-submission")]
public sealed record JobSubmission(
    [property: Id(0)] TrainingSpec Spec,
    [property: Id(1)] DatasetPayload? Data,
    [property: Id(2)] TensorPayload? InitialParameters,
    [property: Id(3)] string DataDescription,
    [property: Id(4)] string InitDescription,
    [property: Id(5)] long StagedInitialBytes = 0,
    [property: Id(6)] bool StagedData = false,
    [property: Id(7)] string? ResumeFrom = null,
    [property: Id(8)] SiloData? SiloData = null);

/// <summary>What a worker activation knows of the parameter server's call for one step (<see cref="IWorkerGrain.ProbeAsync"/>).</summary>
public enum WorkerCallState
{
    /// <summary>This activation never received a call for the step (it may be lost on the way, or the activation is new).</summary>
    NotReceived,
    /// <summary>The call is running.</summary>
    Running,
    /// <summary>The call was answered (the answer may be on its way, or lost).</summary>
    Answered,
}

public enum JobState
{
    /// <summary>No job with this id was ever submitted.</summary>
    Unknown,
    Running,
    Completed,
    /// <summary>The loss became NaN or infinite; <see cref="JobStatus.Message"/> says at which step.</summary>
    Diverged,
    Failed,
    Cancelled,
}

/// <summary>
/// A job's state as the job grain sees it. <see cref="CheckpointStep"/>: the step of the job's latest
/// checkpoint (0: the initial parameters), where a lost parameter server would replay from.
/// <see cref="ResumedFrom"/>: the job this one continues (<see cref="JobSubmission.ResumeFrom"/>), from
/// its step <see cref="ResumedAtStep"/>; the losses, steps and training time then count from that job's start.
/// <see cref="LastEval"/>: the job's latest evaluation on its test set (none without one); once a job with
/// early stopping has ended, the one of its final weights, after the best step.
/// <see cref="Stopping"/>: a job with early stopping's state after its latest evaluation (the best
/// step, whose weights are its final ones, and whether it stopped early); null without early stopping.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.job-status")]
public sealed record JobStatus(
    [property: Id(0)] string JobId,
    [property: Id(1)] JobState State,
    [property: Id(2)] TrainingSpec? Spec,
    [property: Id(3)] int StepsCompleted,
    [property: Id(4)] double FirstLoss,
    [property: Id(5)] double LastLoss,
    [property: Id(6)] string? Message,
    [property: Id(7)] DateTimeOffset? SubmittedAt,
    [property: Id(8)] DateTimeOffset? CompletedAt,
    [property: Id(9)] double TrainingSeconds,
    [property: Id(10)] string DataDescription,
    [property: Id(11)] string InitDescription,
    [property: Id(12)] int CheckpointStep = 0,
    [property: Id(13)] string? ResumedFrom = null,
    [property: Id(14)] int ResumedAtStep = 0,
    [property: Id(15)] EvalRecord? LastEval = null,
    [property: Id(16)] EarlyStopping? Stopping = null)
{
    public bool IsTerminal => State is JobState.Completed or JobState.Diverged or JobState.Failed or JobState.Cancelled;

    public static JobStatus NotFound(string jobId) =>
        new(jobId, JobState.Unknown, null, 0, double.NaN, double.NaN, $"no job with id '{jobId}' is known to this cluster", null, null, 0, "", "");
}

/// <summary>
/// Losses of steps [FromStep, FromStep + Losses.Length), 1-based steps, plus the job's status
/// at the time, so a watcher learns about completion in the same round trip, and the job's
/// evaluations after those steps (<see cref="Evals"/>, in step order).
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.loss-batch")]
public sealed record LossBatch(
    [property: Id(0)] int FromStep,
    [property: Id(1)] TensorPayload Losses,
    [property: Id(2)] JobStatus Status,
    [property: Id(3)] EvalRecord[]? Evals = null);

/// <summary>
/// One evaluation of a job's parameters after step <see cref="Step"/> (in epoch <see cref="Epoch"/>)
/// on the samples of <see cref="Split"/> ("val" or "test", <see cref="HeldOutEvaluation"/>): their loss (the job's loss: a mean for ce and mse,
/// a sum for sse) and the fraction classified right, in [0, 1] (NaN when its targets are not classes).
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.eval-record")]
public sealed record EvalRecord(
    [property: Id(0)] int Step,
    [property: Id(1)] int Epoch,
    [property: Id(2)] string Split,
    [property: Id(3)] int Samples,
    [property: Id(4)] double Loss,
    [property: Id(5)] double Accuracy);

/// <summary>
/// What the parameter server asks of one worker for one step. Every worker keeps a cache of the
/// parameters; the request brings it up to date: <see cref="Parameters"/> are the parameters after
/// Step - 1 steps (the first step, after a restore, a worker re-activated after a crash, and every
/// step of an optimizer other than plain SGD), or <see cref="ParameterRanges"/> are the same from a
/// sharded parameter server, range k offered by shard k itself (Shard.Split of the parameters into
/// TrainingSpec.ResolvedParameterServerShards ranges), or <see cref="Update"/> is step (Step - 1)'s
/// update pack, which an SGD cache applies with the parameter server's own code. All are in the job's
/// precision; at most one is set. <see cref="Seeded"/> (Step 1 only, no parameters): build the
/// cache from the spec's initial parameters, drawn by the worker from the seed.
/// <see cref="Factors"/>: whether the job's exchange plan may factor layers (ExchangePlan.For), fixed
/// by the parameter server for the job's run.
/// </summary>
/// <remarks>The spec rides along (it is small) so a worker re-activated on another silo can rebuild itself.</remarks>
[GenerateSerializer, Immutable, Alias("trainer.work-request")]
public sealed record WorkRequest(
    [property: Id(0)] TrainingSpec Spec,
    [property: Id(1)] int WorldSize,
    [property: Id(2)] int Step,
    [property: Id(3)] TensorTransfer? Parameters,
    [property: Id(4)] bool UploadedData,
    [property: Id(5)] TensorTransfer? Update,
    [property: Id(6)] bool Factors,
    [property: Id(7)] bool Seeded = false,
    [property: Id(8)] SiloData? SiloData = null,
    [property: Id(9)] TensorTransfer[]? ParameterRanges = null);

/// <summary>
/// One worker's gradient pack for one step (one pack per block of its micro-shards: dense slots and
/// sufficient factors, laid out by the job's ExchangePlan; by reference when larger than one chunk)
/// and each block's SUMMED loss, in block order. <see cref="NeedsParameters"/>:
/// the worker holds no cache at Step - 1 (it was re-activated) and computed nothing; the parameter server resends with parameters.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.shard-gradient")]
public sealed record ShardGradient(
    [property: Id(0)] int Rank,
    [property: Id(1)] int Step,
    [property: Id(2)] double[] Losses,
    [property: Id(3)] TensorTransfer Pack,
    [property: Id(4)] bool NeedsParameters = false);

/// <summary>
/// The parameter server starts a run of a data-parallel job's steps over links (the links data plane):
/// each worker links to the parameter server (rank <c>Spec.Workers</c> of <see cref="Endpoints"/>,
/// where each rank's silo takes the run's links) under a new <see cref="Generation"/>, and from then
/// on takes each step's request, from <see cref="FirstStep"/>, and answers its pack over its link, not in
/// Orleans messages, until the link closes. The worker's cache must stand where the job's last step left
/// it: a run starts after a step through Orleans. <see cref="Team"/>: every worker is on the parameter
/// server's silo, and joins its step team instead (no links: the team's threads compute at the server's
/// parameters in place, so a worker needs no cache, and a team may start at a job's first step: a worker
/// that has not loaded its rows yet loads them from where <see cref="UploadedData"/> and <see cref="SiloData"/> say).
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.shard-run")]
public sealed record ShardRun(
    [property: Id(0)] TrainingSpec Spec,
    [property: Id(1)] long Generation,
    [property: Id(2)] string[] Endpoints,
    [property: Id(3)] bool Factors,
    [property: Id(4)] int FirstStep,
    [property: Id(5)] bool Team = false,
    [property: Id(6)] bool UploadedData = false,
    [property: Id(7)] SiloData? SiloData = null);

/// <summary>
/// What the parameter server asks of every worker of a job that splits its first layer: run
/// <see cref="Steps"/> steps from <see cref="FirstStep"/>, exchanging activation blocks with the
/// other workers. <see cref="Parameters"/> (job precision: the model state after FirstStep - 1
/// steps, parameters then optimizer state) starts a run: at the job's start and after every restore, each time under
/// a new <see cref="Generation"/>, with <see cref="Endpoints"/>: where each rank's silo takes the
/// run's links (by rank), for the workers to link up. <see cref="ShareAtEnd"/>: answer the worker's
/// share after the window (the parameter server takes a checkpoint there, or the job ends). <see cref="Seeded"/> starts a
/// run as parameters do, from the spec's initial parameters, which each worker draws from the seed
/// (FirstStep 1, no parameters).
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.linked-run")]
public sealed record LinkedRun(
    [property: Id(0)] TrainingSpec Spec,
    [property: Id(1)] long Generation,
    [property: Id(2)] int FirstStep,
    [property: Id(3)] int Steps,
    [property: Id(4)] TensorTransfer? Parameters,
    [property: Id(5)] bool UploadedData,
    [property: Id(6)] string[]? Endpoints,
    [property: Id(7)] bool ShareAtEnd = false,
    [property: Id(8)] bool Factors = false,
    [property: Id(9)] bool Seeded = false,
    [property: Id(10)] SiloData? SiloData = null)
{
    /// <summary>Whether this window starts a run (a new generation): it brings parameters, or the seed's.</summary>
    public bool Starts => Parameters is not null || Seeded;
}

/// <summary>
/// A worker's answer to a <see cref="LinkedRun"/>: the loss of each step it ran (every worker
/// computes the same losses), ending early at a non-finite one. <see cref="NeedsParameters"/>:
/// the worker holds no share of this generation at FirstStep - 1 (it was re-activated) and ran nothing.
/// <see cref="Share"/>: the worker's share of the parameters after the window, when the run asked
/// for it (<see cref="LinkedRun.ShareAtEnd"/>) and every step ran. <see cref="Failure"/>: why the
/// window stopped early (a link to another worker broke, the run was aborted); the losses are then
/// those of the steps the worker completed and applied before it stopped.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.linked-run-result")]
public sealed record LinkedRunResult(
    [property: Id(0)] int Rank,
    [property: Id(1)] int FirstStep,
    [property: Id(2)] TensorPayload Losses,
    [property: Id(3)] bool NeedsParameters = false,
    [property: Id(4)] TensorTransfer? Share = null,
    [property: Id(5)] string? Failure = null);

/// <summary>
/// The losses of consecutive completed steps [FirstStep, FirstStep + Losses.Length), each computed
/// before that step's update, and the evaluations after them. A batch ends early at a non-finite
/// loss, and where early stopping stops the job (<see cref="Stopping"/>: its state after the batch;
/// null without early stopping).
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.step-batch")]
public sealed record StepBatch(
    [property: Id(0)] int FirstStep,
    [property: Id(1)] TensorPayload Losses,
    [property: Id(2)] EvalRecord[]? Evals = null,
    [property: Id(3)] EarlyStopping? Stopping = null);

/// <summary>
/// A float64 model state: the parameters, and the optimizer's state slots (momentum's buffer; Adam's m, then
/// v), each slot a tensor of its own as long as the parameters. No slots: a zero state (step 0, or
/// uploaded initial parameters). Kept apart so that no tensor is larger than the parameters: one .NET array
/// holds at most 2 GB, so a model state in one tensor bounded an Adam job at a third of the parameters
/// (89M in float64) that a job may otherwise have (268M).
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.model-state")]
public sealed record ModelState(
    [property: Id(0)] TensorPayload Parameters,
    [property: Id(1)] TensorPayload[] Slots)
{
    /// <summary>Parameters with a zero optimizer state.</summary>
    public ModelState(TensorPayload parameters) : this(parameters, []) { }

    /// <summary>Its tensors: the parameters, then each slot.</summary>
    public IEnumerable<TensorPayload> Tensors => Slots.Prepend(Parameters);

    /// <summary>
    /// A model state held as one tensor of <paramref name="count"/> parameters followed by its slots (as
    /// a record written before the slots went apart holds it, and as a split job merges its shares), taken apart.
    /// </summary>
    public static ModelState Apart(TensorPayload whole, int count) =>
        whole.Length == count && count > 0 ? new ModelState(whole) : Apart(whole.Values, count);

    /// <summary>
    /// A model state held as one tensor of <paramref name="whole"/> values in its job's precision (a split job's
    /// merged shares), taken apart into float64 tensors (widening float32 is exact), one at a time.
    /// </summary>
    public static ModelState Apart<T>(ReadOnlySpan<T> whole, int count) where T : unmanaged
    {
        if (count <= 0 || whole.Length % count != 0)
            throw new InvalidOperationException($"A model state of {whole.Length} values is not a whole number of tensors of the model's {count} parameters.");
        var parts = new TensorPayload[whole.Length / count];
        for (int part = 0; part < parts.Length; part++)
        {
            parts[part] = TensorPayload.Allocate<double>(count, out var widened);
            Precisions.Widen(whole.Slice(part * count, count), widened);
        }
        return new ModelState(parts[0], parts[1..]);
    }
}

/// <summary>
/// A job's model state (float64) and where it stands, for initialising a parameter server, and as a
/// job's checkpoint. <see cref="Parameters"/> holds the parameters, <see cref="Slots"/> the optimizer's
/// state slots (see <see cref="Trainer.Abstractions.ModelState"/>; null or none: a zero state). A record
/// written before the slots went apart holds them after the parameters, in <see cref="Parameters"/>:
/// <see cref="WithSlotsApart"/> takes them out. Parameters are null only at step 0 of a job whose spec draws
/// its initial parameters (Init from Seed): whoever needs them draws them, so they are never stored or sent.
/// <see cref="SiloData"/>: where a job whose data stays on the silos reads it (the checkpoint holds no
/// data, only this, so whoever is restored re-opens the files).
/// A job with early stopping also carries its <see cref="Stopping"/> state and the float64 parameters
/// after its best step (<see cref="Best"/>, null before the first validation), so a restored job
/// stops where an undisturbed one does, with the same final weights.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.parameter-state")]
public sealed record ParameterState(
    [property: Id(0)] TrainingSpec Spec,
    [property: Id(1)] int StepsCompleted,
    [property: Id(2)] TensorPayload? Parameters,
    [property: Id(3)] bool UploadedData,
    [property: Id(4)] EarlyStopping? Stopping = null,
    [property: Id(5)] TensorPayload? Best = null,
    [property: Id(6)] SiloData? SiloData = null,
    [property: Id(7)] TensorPayload[]? Slots = null)
{
    /// <summary>The parameters and the optimizer's state (null: drawn from the seed at step 0).</summary>
    public ModelState? ModelState => Parameters is { } parameters ? new ModelState(parameters, Slots ?? []) : null;

    /// <summary>This state with its slots in tensors of their own (a record from before that held them after the parameters).</summary>
    public ParameterState WithSlotsApart()
    {
        if (Slots is not null || Parameters is not { } whole) return this;
        int count = Trainer.Core.Models.ParameterLayout.For(Spec.Model).Count;
        if (whole.Length == count) return this;
        var apart = Trainer.Abstractions.ModelState.Apart(whole, count);
        return this with { Parameters = apart.Parameters, Slots = apart.Slots };
    }
}

/// <summary>
/// Where a finished job stands, for a job that resumes it: its status (<see cref="JobState.Unknown"/>
/// or running: nothing to resume, <see cref="State"/> and <see cref="Losses"/> are null), its model
/// state after <see cref="ParameterState.StepsCompleted"/> steps (the final one, or the latest
/// checkpoint when the job ended without one), the losses of those steps, and a checksum of the
/// uploaded samples it trained on (null: synthetic data, or a record from before checksums).
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.resume-point")]
public sealed record ResumePoint(
    [property: Id(0)] JobStatus Status,
    [property: Id(1)] ParameterTransfer? State,
    [property: Id(2)] TensorTransfer? Losses,
    [property: Id(3)] string? DataChecksum);

/// <summary>
/// A <see cref="ParameterState"/> between grains: its parameters and each optimizer-state slot inline when
/// they fit one chunk, otherwise read from the sender (<see cref="TensorTransfer"/>); null as in the state
/// (step 0, drawn from the seed). The best parameters of early stopping travel the same way.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.parameter-transfer")]
public sealed record ParameterTransfer(
    [property: Id(0)] TrainingSpec Spec,
    [property: Id(1)] int StepsCompleted,
    [property: Id(2)] TensorTransfer? Parameters,
    [property: Id(3)] bool UploadedData,
    [property: Id(4)] EarlyStopping? Stopping = null,
    [property: Id(5)] TensorTransfer? Best = null,
    [property: Id(6)] SiloData? SiloData = null,
    [property: Id(7)] TensorTransfer[]? Slots = null)
{
    /// <summary>
    /// The state, its tensors read from their holder (in chunks of at most <paramref name="maxChunkBytes"/>, whole
    /// when the holder is on <paramref name="here"/>, see <see cref="TensorTransfer.ReceiveAsync(int, SiloAddress?, CancellationToken)"/>) when they came by reference.
    /// </summary>
    public async Task<ParameterState> ReceiveAsync(int maxChunkBytes, SiloAddress? here = null)
    {
        var parameters = Parameters is { } p ? await p.ReceiveAsync(maxChunkBytes, here) : null;
        TensorPayload[]? slots = null;
        if (Slots is { } sent)
        {
            slots = new TensorPayload[sent.Length];
            for (int slot = 0; slot < sent.Length; slot++) slots[slot] = await sent[slot].ReceiveAsync(maxChunkBytes, here);
        }
        return new(Spec, StepsCompleted, parameters, UploadedData, Stopping, Best is { } best ? await best.ReceiveAsync(maxChunkBytes, here) : null, SiloData, slots);
    }
}

/// <summary>
/// What a parameter-server shard loads (<see cref="IParameterShardGrain.LoadAsync"/>): the job's spec,
/// where the job stands, and the shard's range of the model state (float64: its range of the
/// parameters, then its range of each optimizer-state slot, in one tensor: <see cref="TrainingSpec"/> bounds a
/// shard's range so that it fits one array).
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.shard-load")]
public sealed record ShardLoad(
    [property: Id(0)] TrainingSpec Spec,
    [property: Id(1)] int StepsCompleted,
    [property: Id(2)] TensorTransfer State);

/// <summary>
/// A parameter-server shard's model state (<see cref="IParameterShardGrain.GetStateAsync"/>) in the job's
/// precision: its range of the parameters, and its range of each optimizer-state slot, one after another
/// (empty without state). Both are the shard's own buffers, offered by reference: read them at once, before
/// the shard steps again.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.shard-model-state")]
public sealed record ShardModelState(
    [property: Id(0)] TensorTransfer Parameters,
    [property: Id(1)] TensorTransfer Slots);
