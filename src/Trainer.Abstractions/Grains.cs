using Orleans.Concurrency;

namespace Trainer.Abstractions;

/// <summary>
/// One per job (key: job id). Owns the job's lifecycle: validates and starts it, drives
/// synchronous steps through the parameter server, records losses, keeps the history queryable.
/// </summary>
public interface ITrainingJobGrain : IGrainWithStringKey
{
    /// <summary>Validates and starts the job, returning at once; throws <see cref="JobRejectedException"/> for bad input.</summary>
    Task<JobStatus> SubmitAsync(JobSubmission submission);

    [AlwaysInterleave]
    Task<JobStatus> GetStatusAsync();

    /// <summary>
    /// Losses from 1-based step <paramref name="fromStep"/> on. Waits up to <paramref name="wait"/>
    /// for new ones (a long poll) when none are there yet and the job is still running.
    /// </summary>
    [AlwaysInterleave]
    Task<LossBatch> GetLossesAsync(int fromStep, int maxCount, TimeSpan wait);

    /// <summary>The current (or final) parameters as one flat buffer in the model's layout.</summary>
    [AlwaysInterleave]
    Task<TensorPayload> GetParametersAsync();

    [AlwaysInterleave]
    Task<JobStatus> CancelAsync();
}

/// <summary>
/// One per job (key: job id). Holds the parameters, fans a step out to the workers, combines
/// their gradients in shard order and applies the optimizer.
/// </summary>
public interface IParameterServerGrain : IGrainWithStringKey
{
    Task InitializeAsync(ParameterState state);

    [ResponseTimeout("00:10:00")]
    Task<StepResult> RunStepAsync(int step);

    Task<ParameterState> GetStateAsync();

    /// <summary>Deactivates the server and its workers once the job is over.</summary>
    Task ReleaseAsync();
}

/// <summary>
/// One per job and rank (key: rank, job id). Owns one contiguous shard of the batch, loaded once,
/// and computes that shard's summed loss and gradient for the parameters it is sent.
/// </summary>
public interface IWorkerGrain : IGrainWithIntegerCompoundKey
{
    [ResponseTimeout("00:10:00")]
    Task<ShardGradient> ComputeAsync(WorkRequest request);

    Task ReleaseAsync();
}

/// <summary>One per job (key: job id). Holds the job's uploaded data and hands out shards.</summary>
public interface IDatasetGrain : IGrainWithStringKey
{
    Task StoreAsync(DatasetPayload data);

    /// <summary>Rows [start, start + count); null when nothing was uploaded (the job uses synthetic data).</summary>
    Task<DatasetPayload?> GetRowsAsync(int start, int count);

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
