using Orleans.Runtime.Messaging;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Trainer.Abstractions;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// Owns a job's parameters. Each step: send the parameters to every worker, wait for all shard
/// gradients, add them in SHARD order (never arrival order), apply the optimizer. The result is
/// the single-process full-batch update, bit-reproducible for a given worker count.
/// </summary>
/// <remarks>Placed beside the job grain that activates it: the job talks to it every step.</remarks>
[Orleans.Placement.PreferLocalPlacement]
public sealed class ParameterServerGrain(ILogger<ParameterServerGrain> logger, IOptions<TrainerOptions> options)
    : Grain, IParameterServerGrain
{
    private readonly TrainerOptions _options = options.Value;
    private TrainingSpec? _spec;
    // The parameters and the update, in the job's precision (float64 or float32).
    private ServerParameters? _parameters;
    private int _stepsCompleted;
    private StepResult? _lastResult;
    private bool _uploadedData;

    private string JobId => this.GetPrimaryKeyString();

    public Task InitializeAsync(ParameterState state)
    {
        var spec = state.Spec;
        _spec = spec;
        _parameters = ServerParameters.Create(spec, state.Parameters);
        _stepsCompleted = state.StepsCompleted;
        _lastResult = null;
        _uploadedData = state.UploadedData;
        return Task.CompletedTask;
    }

    public async Task<StepResult> RunStepAsync(int step)
    {
        if (_spec is null || _parameters is null)
            throw new InvalidOperationException($"The parameter server of job {JobId} holds no parameters (it was never initialised, or its silo was lost).");
        // A retried call for the step just done gets the same answer instead of a second update.
        if (_lastResult is { } last && last.Step == step) return last;
        if (step != _stepsCompleted + 1)
            throw new InvalidOperationException($"Job {JobId}: step {step} requested but {_stepsCompleted} steps are done.");

        var spec = _spec;
        var parameters = _parameters;
        var request = new WorkRequest(spec, spec.Workers, step, parameters.CurrentPayload, _uploadedData);
        // Fan out to every worker at once, then add the results in SHARD order as they come: shard
        // r is added while later shards still compute, and arrival order never matters.
        var calls = Enumerable.Range(0, spec.Workers).Select(rank => ComputeWithRetryAsync(rank, request)).ToArray();
        parameters.Reset();
        try
        {
            foreach (var call in calls)
            {
                var shard = await call;
                parameters.Add(shard);
            }
        }
        catch
        {
            foreach (var call in calls) _ = call.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
            throw;
        }
        double loss = parameters.Complete();
        _stepsCompleted = step;
        _lastResult = new StepResult(step, loss);
        return _lastResult;
    }

    public Task<ParameterState> GetStateAsync()
    {
        if (_spec is null)
            throw new InvalidOperationException($"The parameter server of job {JobId} holds no parameters.");
        return Task.FromResult(new ParameterState(_spec, _stepsCompleted, _parameters!.ToFloat64(), _uploadedData));
    }

    public async Task ReleaseAsync()
    {
        if (_spec is not null)
            await Task.WhenAll(Enumerable.Range(0, _spec.Workers).Select(rank => Worker(rank).ReleaseAsync()));
        DeactivateOnIdle();
    }

    private IWorkerGrain Worker(int rank) => GrainFactory.GetGrain<IWorkerGrain>(rank, JobId);

    /// <summary>
    /// A worker call that fails because its silo died is retried with doubling back-off until the
    /// retry budget is spent; Orleans re-activates the worker on a surviving silo once the dead one
    /// is declared dead. Results are matched by rank and step, so a late or duplicate answer can
    /// never be counted twice: each rank contributes exactly one result per step.
    /// </summary>
    private async Task<ShardGradient> ComputeWithRetryAsync(int rank, WorkRequest request)
    {
        var backoff = _options.RetryBackoff;
        var deadline = DateTime.UtcNow + _options.WorkerRetryBudget;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                var result = await Worker(rank).ComputeAsync(request).WaitAsync(_options.WorkerCallTimeout);
                if (result.Rank != rank || result.Step != request.Step)
                    throw new InvalidOperationException($"Worker {rank} answered for rank {result.Rank}, step {result.Step}; expected step {request.Step}.");
                return result;
            }
            catch (Exception e) when (IsTransient(e))
            {
                if (DateTime.UtcNow + backoff > deadline)
                    throw new TimeoutException($"worker {rank} of job {JobId} could not be reached for step {request.Step} within {_options.WorkerRetryBudget.TotalSeconds:F0} s ({attempt} attempts; last error: {e.Message})", e);
                logger.LogWarning("Job {Job} step {Step}: worker {Rank} failed ({Error}); retry {Attempt} in {Backoff} ms",
                    JobId, request.Step, rank, e.GetType().Name, attempt, backoff.TotalMilliseconds);
                await Task.Delay(backoff);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxRetryBackoff.Ticks));
            }
        }
    }

    // OperationCanceledException: Orleans answers a call with it when the grain-directory lookup that
    // routes it is cancelled by a membership change, i.e. exactly while a dead silo is being removed.
    private static bool IsTransient(Exception e) =>
        e is SiloUnavailableException or OrleansMessageRejectionException or TimeoutException or ConnectionFailedException or OperationCanceledException;
}
