using Orleans.Concurrency;

namespace Trainer.Abstractions;

/// <summary>
/// One per job (key: job id). Owns the job's lifecycle: validates and starts it, drives
/// synchronous steps through the parameter server, records losses, keeps the history queryable.
/// </summary>
public interface ITrainingJobGrain : IGrainWithStringKey, ITensorSource
{
    /// <summary>
    /// Takes the next chunk of initial parameters or samples too large for one message, before
    /// <see cref="SubmitAsync"/> names them (<see cref="JobSubmission.StagedInitialBytes"/>,
    /// <see cref="JobSubmission.StagedData"/>). A chunk at offset 0 starts that part over. Nothing
    /// is stored until the submission passes its checks.
    /// </summary>
    Task StageAsync(UploadPart part, TensorChunk chunk);

    /// <summary>
    /// Validates and starts the job, returning once its initial checkpoint is stored and loaded (the
    /// steps run on in the background); throws <see cref="JobRejectedException"/> for bad input.
    /// </summary>
    /// <remarks>
    /// NOTE: a 50M-parameter job's initial weights are drawn, stored (400 MB) and loaded before
    /// this answers: 10-35 s on the 2-core machine in a slow hour (the client's wall time less the
    /// job's training time, 5 runs on 2 silos), so Orleans' default 30 s
    /// response timeout failed the client while the job went on starting.
    /// </remarks>
    [ResponseTimeout(CallTimeouts.Long)]
    Task<JobStatus> SubmitAsync(JobSubmission submission);

    /// <summary>
    /// Opens and checks the files of a job whose data stays on the silos (<see cref="JobSubmission.SiloData"/>)
    /// for <paramref name="model"/>, on this grain's silo, before a client builds the job's spec from what
    /// they hold; throws <see cref="JobRejectedException"/> naming the field, the file, the silo and what is wrong.
    /// </summary>
    [ResponseTimeout(CallTimeouts.Long)]
    Task<SiloDataFacts> InspectDataAsync(SiloData data, Trainer.Core.Models.ModelSpec model);

    [AlwaysInterleave]
    Task<JobStatus> GetStatusAsync();

    /// <summary>
    /// Losses from 1-based step <paramref name="fromStep"/> on, at most <paramref name="maxCount"/> and
    /// at most 1,048,576 per answer (read on from where one ends). Waits up to <paramref name="wait"/>
    /// for new ones (a long poll) when none are there yet and the job is still running.
    /// </summary>
    [AlwaysInterleave]
    Task<LossBatch> GetLossesAsync(int fromStep, int maxCount, TimeSpan wait);

    /// <summary>
    /// The current (or final) parameters as one flat float64 buffer in the model's layout, by
    /// reference when larger than one chunk (<see cref="TrainingJobs.ReadParametersAsync"/> reads them either way).
    /// </summary>
    [AlwaysInterleave, ResponseTimeout(CallTimeouts.Long)]
    Task<TensorTransfer> GetParametersAsync();

    [AlwaysInterleave]
    Task<JobStatus> CancelAsync();

    /// <summary>
    /// What a job that resumes this one starts from (<see cref="JobSubmission.ResumeFrom"/>): its final
    /// model state (parameters and optimizer state) or, when it ended without one, its latest
    /// checkpoint, with the losses up to there; both by reference when larger than one chunk.
    /// </summary>
    [AlwaysInterleave, ResponseTimeout(CallTimeouts.Long)]
    Task<ResumePoint> GetResumePointAsync();
}

/// <summary>
/// One per job (key: job id). Owns a data-parallel job's parameters and optimizer state: fans each
/// step out to the workers, adds their gradient packs in shard order into the step's update, applies
/// the optimizer, and brings the workers' caches up to date with the next step. A split job's
/// workers own their slices (and their optimizer state); the server starts their windows of steps
/// and merges their shares for checkpoints.
/// </summary>
public interface IParameterServerGrain : IGrainWithStringKey, ITensorSource
{
    // A large model's parameters are read in chunks while these run (400 MB for 50M parameters); see SubmitAsync.
    [ResponseTimeout(CallTimeouts.Long)]
    Task InitializeAsync(ParameterTransfer state);

    /// <summary>
    /// Runs steps from <paramref name="firstStep"/> on: at most <paramref name="maxSteps"/>, and no
    /// more once a short time window has passed (so the job grain hears of progress often), ending
    /// early at a non-finite loss. A retried call for the same first step gets the same answer.
    /// </summary>
    [ResponseTimeout(CallTimeouts.Long)]
    Task<StepBatch> RunStepsAsync(int firstStep, int maxSteps);

    /// <summary>
    /// The model state after the steps done: float64 parameters and each optimizer-state slot
    /// (by reference when large: read them at once, the offers last until the next step).
    /// </summary>
    [ResponseTimeout(CallTimeouts.Long)]
    Task<ParameterTransfer> GetStateAsync();

    /// <summary>
    /// The model state after the steps done, as <see cref="GetStateAsync"/> answers it, taken as the job ends: a
    /// data-parallel server first ends its run and lets its workers go (their rows and buffers are not held beside
    /// the state), and hands over its own float64 parameters rather than a copy. It takes no step after this: the
    /// job grain releases it.
    /// </summary>
    [ResponseTimeout(CallTimeouts.Long)]
    Task<ParameterTransfer> TakeFinalStateAsync();

    /// <summary>Deactivates the server and its workers once the job is over.</summary>
    Task ReleaseAsync();
}

/// <summary>
/// One per job and shard (key: shard, job id) of a data-parallel job whose parameter server is
/// sharded (<c>--ps-shards</c>): owns one contiguous range of the flat parameters and that range's
/// optimizer state, and applies the optimizer to it each step; the workers read its range of the
/// parameters from it. The shards spread over the silos, the parameter server's last.
/// </summary>
public interface IParameterShardGrain : IGrainWithIntegerCompoundKey, ITensorSource
{
    /// <summary>Takes the shard's range of the model state (read in chunks when large); answers the range's parameters (job precision, by reference when large), which the workers read.</summary>
    [ResponseTimeout(CallTimeouts.Long)]
    Task<TensorTransfer> LoadAsync(ShardLoad load);

    /// <summary>
    /// Applies step <paramref name="step"/>'s optimizer update to the range from its range of the full-batch
    /// gradient (job precision); answers the range's new parameters (by reference when large), which the
    /// workers read for the next step, and which stay offered and unchanged until the step after.
    /// A repeated call for the step just done gets the same answer.
    /// </summary>
    [ResponseTimeout(CallTimeouts.Long)]
    Task<TensorTransfer> StepAsync(int step, TensorTransfer gradient);

    /// <summary>The range's model state (job precision, by reference) after <paramref name="stepsCompleted"/> steps; throws when the shard stands elsewhere (it was lost).</summary>
    [ResponseTimeout(CallTimeouts.Long)]
    Task<ShardModelState> GetStateAsync(int stepsCompleted);

    Task ReleaseAsync();
}

/// <summary>
/// One per job and rank (key: rank, job id). In a data-parallel job it owns one contiguous shard of
/// the batch, loaded once, and a cache of the parameters; each step (<see cref="ComputeAsync"/>) it
/// brings the cache up to date from the request and computes its shard's summed loss and gradient
/// pack. In a split job it owns a slice of the first layer's units and that slice's optimizer state,
/// and runs windows of steps with the other workers (<see cref="RunWindowAsync"/>), exchanging activations.
/// </summary>
public interface IWorkerGrain : IGrainWithIntegerCompoundKey, ITensorSource
{
    [ResponseTimeout(CallTimeouts.Long)]
    Task<ShardGradient> ComputeAsync(WorkRequest request);

    /// <summary>
    /// Where this worker's silo takes workers' links ("address:port"; the same for every worker of the silo);
    /// from now on the silo takes links to this worker (a connection for a worker without a run there is refused).
    /// </summary>
    Task<string> PrepareLinksAsync();

    /// <summary>
    /// Starts a data-parallel run over links (see <see cref="ShardRun"/>): answers once this worker is
    /// linked to the parameter server and waits for its requests. Throws <see cref="StateLostException"/>
    /// when this activation holds no cache of the job's parameters (it was re-activated).
    /// </summary>
    [ResponseTimeout(CallTimeouts.Long)]
    Task StartShardRunAsync(ShardRun run);

    /// <summary>
    /// Runs a window of a split job's steps (see <see cref="LinkedRun"/>), sending this worker's
    /// activation block of each step straight to the other workers over links of their own and
    /// reading theirs; the parameter server is not in the per-step path. A repeated call for the
    /// same generation and first step gets the same answer.
    /// </summary>
    [ResponseTimeout(CallTimeouts.Long)]
    Task<LinkedRunResult> RunWindowAsync(LinkedRun run);

    /// <summary>
    /// Whether this activation has the parameter server's call for <paramref name="step"/> (a
    /// data-parallel step, or a split window's first step) running, has answered it, or never
    /// received it. Runs beside the running call: the parameter server asks when a call has had no
    /// answer for a while, so that a call or answer lost on the way is made again without waiting out
    /// the call's whole timeout.
    /// </summary>
    [AlwaysInterleave]
    Task<WorkerCallState> ProbeAsync(int step);

    /// <summary>Ends a linked run of <paramref name="generation"/> (or older) that waits for a block that will never come (a worker was lost).</summary>
    [AlwaysInterleave]
    Task AbortRunAsync(long generation);

    /// <summary>
    /// A split worker's share (its slice's parameters, then their optimizer state; job precision)
    /// after <paramref name="stepsCompleted"/> steps; null when this activation holds no such share.
    /// A large one comes by reference, offered until read once.
    /// </summary>
    [ResponseTimeout(CallTimeouts.Read)]
    Task<TensorTransfer?> GetShareAsync(int stepsCompleted);

    Task ReleaseAsync();
}

/// <summary>One per job (key: job id). Holds the job's uploaded data and hands out shards (large ones by reference).</summary>
public interface IDatasetGrain : IGrainWithStringKey, ITensorSource
{
    [ResponseTimeout(CallTimeouts.Long)]
    Task StoreAsync(DatasetTransfer data);

    /// <summary>Rows [start, start + count), stamped with their version; null when nothing was uploaded (the job uses synthetic data).</summary>
    [ResponseTimeout(CallTimeouts.Read)]
    Task<DatasetTransfer?> GetRowsAsync(int start, int count);

    /// <summary>
    /// Which rows the grain holds: a number of its own for each upload it stored (one stored again from
    /// the very same arrays keeps it), never reused; 0 when it holds none. Silos key the rows they hold by it.
    /// </summary>
    Task<long> GetVersionAsync();

    Task ReleaseAsync();
}

/// <summary>The cluster's list of jobs (single instance, key 0), so `trainer list` can find them and lost jobs get resumed.</summary>
public interface IJobRegistryGrain : IGrainWithIntegerKey
{
    Task RegisterAsync(string jobId);

    Task MarkFinishedAsync(string jobId);

    Task<string[]> ListAsync();

    /// <summary>Jobs not yet finished: the supervisor pings them so a job lost with its silo resumes.</summary>
    Task<string[]> ListRunningAsync();
}
