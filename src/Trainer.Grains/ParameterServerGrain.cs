using System.Diagnostics;
using System.Runtime.InteropServices;
using Orleans.Runtime.Messaging;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime;
using Trainer.Abstractions;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// Runs a job's steps over its workers. Each step: send every worker the previous step's update,
/// collect each shard's loss and gradient pack, combine them in SHARD order (never arrival order)
/// into this step's update, which travels with the next step. The parameters themselves live in the
/// workers' replicas, which all apply the same update with the same code; the result is the
/// single-process full-batch update (LocalTrainer), bit-reproducible for a given worker count.
/// On the links data plane (<see cref="DataPlane.Links"/>, the default across silos), and always for a job that
/// splits its first layer, the job is driven a window of steps at a time instead: the workers
/// exchange their packs (or activations) among themselves and each builds the update in rank order,
/// and the parameter server only starts each window, checks that every worker computed the same
/// losses, and keeps the replica (or the slices) a checkpoint needs.
/// </summary>
/// <remarks>
/// Placed beside the job grain that activates it: the job talks to it every step. It holds
/// parameters only while they must still reach the workers (after a restore; at the first step
/// only uploaded ones: drawn ones each worker draws from the seed, <see cref="InitialParameters"/>); a
/// worker that lost its replica gets a copy of a surviving worker's, and when no replica survives
/// the step fails and the job restores its checkpoint.
/// </remarks>
[Orleans.Placement.PreferLocalPlacement]
public sealed class ParameterServerGrain(
    ILogger<ParameterServerGrain> logger, IOptions<TrainerOptions> options, IClusterMembershipService membership, ComputeScheduler compute, IOptions<SiloMessagingOptions> messaging)
    : Grain, IParameterServerGrain
{
    private readonly TrainerOptions _options = options.Value;
    // Parameters too large for one message, which the workers (the "sync" offer) or the job grain (a "state") read in chunks.
    private TensorOffers? _offers;
    private TrainingSpec? _spec;
    private ServerUpdates? _updates;
    private int _stepsCompleted;
    private StepBatch? _lastBatch;
    private bool _uploadedData;
    // Parameters after _stepsCompleted steps (job precision) that the workers still have to be sent.
    private TensorPayload? _syncParameters;
    // The update of step _stepsCompleted, sent with the next step.
    private TensorPayload? _pendingUpdate;
    private bool _factors;
    // Whether the workers run windows of steps over links (a split job, or data-parallel on the links data plane).
    private bool _linked;
    // A job that splits its first layer: merges the workers' shares. A linked job's runs' generation (new at
    // every initialisation: it names the run's links, so an older run's can never be mixed in), and its window in steps.
    private SplitServer? _split;
    private long _generation;
    private int _linkedWindow = 1;
    // The workers' shares (a data-parallel job's: worker 0's replica) after the last window that ended at the job grain's bound.
    private (int StepsCompleted, TensorPayload[] Shares)? _checkpointShares;

    private string JobId => this.GetPrimaryKeyString();

    private TensorOffers Offers => _offers ??= TensorOffers.For(this, messaging.Value);

    public IAsyncEnumerable<TensorChunk> ReadOfferAsync(long offer, int maxChunkBytes, long from, long to) => Offers.ReadAsync(offer, maxChunkBytes, from, to);

    private Task<TensorPayload?> ReceiveAsync(TensorTransfer? transfer) => Offers.ReceiveOptionalAsync(transfer);

    // The parameters the workers must load, by reference when large (every worker reads the same offer).
    private TensorTransfer? SyncTransfer => Offers.SendOptional("sync", _syncParameters);

    private void Synced()
    {
        _syncParameters = null;
        Offers.Withdraw("sync");
    }

    // At step 0 of a job whose spec draws its initial parameters the workers draw them (InitialParameters):
    // only such a start has neither a step done nor parameters to send (InitializeAsync refuses any other state without them).
    private bool SeededStart => _stepsCompleted == 0 && _syncParameters is null;

    // Whether the workers' replicas must be (re)built before the next step: from parameters, or from the seed.
    private bool Syncing => _syncParameters is not null || SeededStart;

    public async Task InitializeAsync(ParameterTransfer transfer)
    {
        var state = await Offers.ReceiveAsync(transfer);
        var spec = state.Spec;
        _spec = spec;
        // Within one silo nothing crosses a network: dense packs (no duplicated factor products) through the parameter server (no copies).
        bool spansSilos = membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active) > 1;
        _factors = _options.Exchange switch
        {
            ExchangeMode.Dense => false,
            ExchangeMode.Factors => true,
            _ => spansSilos,
        };
        var plan = ExchangePlan.For(spec, _factors);
        _updates = ServerUpdates.Create(spec, plan, compute);
        _split = spec.Parallelism == Parallelism.SplitFirstLayer ? SplitServer.Create(spec) : null;
        // NOTE: on the Orleans data plane every step's update and packs are messages as large as the
        // model's dense layers; across silos, a model larger than one chunk would exceed the message
        // limit, so its packs go over links (which have none) whatever the option says.
        bool large = (long)plan.Layout.Count * spec.Precision.Size() > Offers.ChunkBytes;
        _linked = _split is not null || (spansSilos && large) || _options.DataPlane switch
        {
            DataPlane.Links => true,
            DataPlane.Orleans => false,
            _ => spansSilos,
        };
        NextGeneration();
        _linkedWindow = 1;
        _checkpointShares = null;
        if (_split is null) logger.LogInformation("Job {Job}: exchange {Plan}; the workers send their packs {Plane}", JobId, plan.Describe(),
            _linked ? "to each other over links and each builds the update" : "to the parameter server");
        else logger.LogInformation("Job {Job}: the first layer's {Units} units are split over {Workers} workers; they exchange activations", JobId, spec.Model.LayerSizes[1], spec.Workers);
        if (state.Parameters is null && state.StepsCompleted != 0)
            throw new ArgumentException($"Job {JobId}: parameters after step {state.StepsCompleted} are missing; only step 0 may come without them (drawn from the seed).", nameof(state));
        Offers.Withdraw("sync");
        Offers.Withdraw("state");
        _syncParameters = state.Parameters is { } parameters ? _updates.FromFloat64(parameters) : null;
        _pendingUpdate = null;
        _stepsCompleted = state.StepsCompleted;
        _lastBatch = null;
        _uploadedData = state.UploadedData;
    }

    public async Task<StepBatch> RunStepsAsync(int firstStep, int maxSteps)
    {
        if (_spec is null || _updates is null)
            throw new InvalidOperationException($"The parameter server of job {JobId} was never initialised, or its silo was lost.");
        // A retried call for the batch just done gets the same answer instead of more updates.
        if (_lastBatch is { } last && last.FirstStep == firstStep) return last;
        if (firstStep != _stepsCompleted + 1)
            throw new InvalidOperationException($"Job {JobId}: step {firstStep} requested but {_stepsCompleted} steps are done.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSteps);
        if (_linked)
        {
            _lastBatch = new StepBatch(firstStep, TensorPayload.From(await RunLinkedWindowAsync(firstStep, maxSteps)));
            return _lastBatch;
        }

        // NOTE: one call per step cost the seed job a job-grain round trip per step (~0.1 ms of ~1.3);
        // a batch runs until its window closes, so the job still hears of progress every few ms.
        // maxSteps may be the rest of the job (no checkpoint due), so the losses go to a list, not an array of that size.
        var losses = new List<double>(Math.Min(maxSteps, 1024));
        var clock = Stopwatch.StartNew();
        while (losses.Count < maxSteps && (losses.Count == 0 || clock.Elapsed < _options.StepBatchWindow))
        {
            double loss = await RunStepAsync(firstStep + losses.Count);
            losses.Add(loss);
            if (!double.IsFinite(loss)) break;
        }
        _lastBatch = new StepBatch(firstStep, TensorPayload.From(CollectionsMarshal.AsSpan(losses)));
        return _lastBatch;
    }

    private async Task<double> RunStepAsync(int step)
    {
        var spec = _spec!;
        var request = new WorkRequest(spec, spec.Workers, step, SyncTransfer, _uploadedData, Syncing ? null : _pendingUpdate, _factors, SeededStart);
        var pending = new Task<ShardGradient>[spec.Workers];
        for (int rank = 0; rank < pending.Length; rank++) pending[rank] = ComputeWithRetryAsync(rank, request);
        // Shards are added in rank order as they arrive: shard 0's pack is copied while the others
        // still compute, so only the last shards' additions remain once every worker has answered.
        _updates!.Begin();
        for (int rank = 0; rank < pending.Length; rank++)
        {
            var result = await pending[rank];
            if (result.NeedsParameters) result = await ResyncAsync(rank, request, await Task.WhenAll(pending));
            await _updates.AddAsync(result);
        }
        double loss = _updates.Complete();
        _pendingUpdate = _updates.Current;
        Synced();
        _stepsCompleted = step;
        return loss;
    }

    /// <summary>
    /// A linked job's steps: every worker runs the same window of steps, exchanging its blocks
    /// (activations, or packs) with the others directly, and answers its losses. The window's length
    /// in steps follows the measured step rate so a window lasts about <see cref="TrainerOptions.SplitStepBatchWindow"/>.
    /// A window that reaches the job grain's bound (a checkpoint or the job's end) brings the
    /// workers' shares (worker 0's replica) back with it, so the checkpoint needs no further round trip.
    /// A worker that lost its share or replica, or cannot be reached, fails the window and the others
    /// are told to stop waiting for its blocks. A split job then restores its checkpoint (only that
    /// worker held its slice); a data-parallel job carries on from a surviving replica
    /// (<see cref="ResumeFromSurvivorAsync"/>), retrying a window that failed before any step a few times.
    /// </summary>
    private async Task<double[]> RunLinkedWindowAsync(int firstStep, int maxSteps)
    {
        for (int attempt = 1; ; attempt++)
        {
            var losses = await TryLinkedWindowAsync(firstStep, maxSteps);
            if (losses.Length > 0) return losses;
            if (attempt == ResumesWithoutProgress)
                throw new InvalidOperationException($"Job {JobId}: the window from step {firstStep} failed {attempt} times in a row before completing a step.");
        }
    }

    // How often a data-parallel window may fail before its first step and resume from a survivor before the job restores its checkpoint instead.
    private const int ResumesWithoutProgress = 3;

    private async Task<double[]> TryLinkedWindowAsync(int firstStep, int maxSteps)
    {
        var spec = _spec!;
        int steps = Math.Min(maxSteps, _linkedWindow);
        var clock = Stopwatch.StartNew();
        // A run that starts (parameters) tells every worker where the others' silos take links.
        var endpoints = !Syncing ? null
            : await Task.WhenAll(Enumerable.Range(0, spec.Workers).Select(rank => CallWithRetryAsync(rank, firstStep, worker => worker.PrepareLinksAsync())));
        var run = new LinkedRun(spec, _generation, firstStep, steps, SyncTransfer, _uploadedData, endpoints, ShareAtEnd: steps == maxSteps, _factors, SeededStart);
        var pending = Enumerable.Range(0, spec.Workers).Select(rank => CallWithRetryAsync(rank, firstStep, worker => worker.RunWindowAsync(run))).ToList();
        var results = new LinkedRunResult?[spec.Workers];
        string? failure = null;
        bool aborted = false;
        // The others wait for blocks that will not come: release them.
        async Task AbortAllAsync()
        {
            if (aborted) return;
            aborted = true;
            await Task.WhenAll(Enumerable.Range(0, spec.Workers).Select(rank => QuietlyAsync(() => Worker(rank).AbortRunAsync(run.Generation).WaitAsync(_options.SplitLinkTimeout))));
        }
        try
        {
            await foreach (var answered in Task.WhenEach(pending))
            {
                var result = await answered;
                if (result.FirstStep != firstStep)
                    throw new InvalidOperationException($"Worker {result.Rank} answered for the window from step {result.FirstStep}; expected step {firstStep}.");
                results[result.Rank] = result;
                if (result.NeedsParameters || result.Failure is not null)
                {
                    failure ??= result.NeedsParameters ? $"worker {result.Rank} holds no parameters (it was re-activated)" : result.Failure;
                    await AbortAllAsync();
                }
            }
        }
        catch (Exception e)
        {
            failure ??= e.Message;
            await AbortAllAsync();
            // Let the others finish before the job goes on or restores.
            await QuietlyAsync(() => Task.WhenAll(pending).WaitAsync(_options.WorkerCallTimeout));
            foreach (var done in pending.Where(t => t.IsCompletedSuccessfully && t.Result.FirstStep == firstStep)) results[done.Result.Rank] ??= done.Result;
        }
        if (failure is not null) return await ResumeFromSurvivorAsync(firstStep, results, failure);

        var losses = results[0]!.Losses.ToArray();
        foreach (var other in results.Skip(1)) CheckSameLosses(firstStep, losses, other!);
        Synced();
        _stepsCompleted = firstStep + losses.Length - 1;
        _checkpointShares = null;
        var shares = _split is null ? [results[0]!.Share] : results.Select(r => r!.Share).ToArray();
        if (shares.All(share => share is not null))
        {
            try
            {
                // Read now: a share too large for one message is offered until read (GetStateAsync would ask again otherwise).
                var read = await Task.WhenAll(shares.Select(ReceiveAsync));
                _checkpointShares = (_stepsCompleted, [.. read.Select(share => share!)]);
            }
            catch (Exception e) when (IsTransient(e) || e is InvalidOperationException)
            {
                logger.LogWarning("Job {Job}: the workers' shares after step {Step} could not be read ({Error}); a checkpoint asks again", JobId, _stepsCompleted, e.Message);
            }
        }
        // Aim the next window at the time target; grow at most 4x at a time (the first window of a run includes loading).
        double perStep = clock.Elapsed.TotalMilliseconds / losses.Length;
        _linkedWindow = (int)Math.Clamp(_options.SplitStepBatchWindow.TotalMilliseconds / Math.Max(perStep, 1e-3), 1, 4.0 * steps);
        return losses;
    }

    /// <summary>
    /// After a failed window. A data-parallel job's replicas are all the same at the same step, so
    /// the job carries on from the last step every surviving worker completed: it takes those steps'
    /// losses, starts a new run from a survivor's replica there, and the lost worker gets that
    /// replica with the others. The bits are those of an undisturbed run. A split job (only the lost
    /// worker held its slice), or a job no worker survived, fails the window: the job grain restores its checkpoint.
    /// </summary>
    private async Task<double[]> ResumeFromSurvivorAsync(int firstStep, LinkedRunResult?[] results, string failure)
    {
        int lost = Array.FindIndex(results, r => r is null or { NeedsParameters: true });
        var survivors = results.Where(r => r is { NeedsParameters: false }).Select(r => r!).ToArray();
        if (_split is not null || survivors.Length == 0)
        {
            if (lost >= 0 && results[lost] is { NeedsParameters: true }) throw LostShare(lost);
            logger.LogWarning("Job {Job}: the window from step {Step} failed: {Error}", JobId, firstStep, failure);
            throw new InvalidOperationException($"Job {JobId}: the window from step {firstStep} failed: {failure}");
        }
        int agreed = survivors.Min(r => r.Losses.Length);
        var losses = survivors[0].Losses.Values[..agreed].ToArray();
        foreach (var other in survivors.Skip(1)) CheckSameLosses(firstStep, losses, other, agreed);
        int after = firstStep - 1 + agreed;
        if (await FirstReplicaAsync(survivors.Where(r => r.Losses.Length == agreed).Select(r => r.Rank), after, null) is not { } found)
            throw new InvalidOperationException($"Job {JobId}: no worker holds the parameters after step {after} (the window from step {firstStep} failed: {failure}).");
        logger.LogWarning("Job {Job} step {Step}: the window failed ({Error}); the workers carry on from worker {Donor}'s replica after step {After}",
            JobId, after + 1, failure, found.Rank, after);
        Synced();
        _syncParameters = found.Replica;
        _stepsCompleted = after;
        _checkpointShares = null;
        NextGeneration();
        return losses;
    }

    /// <summary>
    /// The replica after <paramref name="stepsCompleted"/> steps of the first of <paramref name="ranks"/>
    /// that holds one (applying <paramref name="pendingUpdate"/> first where given); a worker that
    /// cannot be reached is skipped. Null when none holds it.
    /// </summary>
    private async Task<(int Rank, TensorPayload Replica)?> FirstReplicaAsync(IEnumerable<int> ranks, int stepsCompleted, TensorPayload? pendingUpdate)
    {
        foreach (int rank in ranks)
        {
            try
            {
                if (await ReplicaAsync(rank, stepsCompleted, pendingUpdate) is { } replica) return (rank, replica);
            }
            catch (Exception e) when (IsTransient(e))
            {
                logger.LogWarning("Job {Job}: worker {Rank} could not hand over its replica ({Error}); asking the next", JobId, rank, e.GetType().Name);
            }
        }
        return null;
    }

    /// <summary>Worker <paramref name="rank"/>'s replica (or share) after <paramref name="stepsCompleted"/> steps, read in chunks when large; null when it holds none.</summary>
    private async Task<TensorPayload?> ReplicaAsync(int rank, int stepsCompleted, TensorPayload? pendingUpdate) =>
        await ReceiveAsync(await Worker(rank).GetReplicaAsync(stepsCompleted, pendingUpdate).WaitAsync(_options.WorkerCallTimeout));

    // NOTE: clock ticks order the generations of successive parameter-server activations too (a
    // restore takes seconds, far beyond the clock skew of one cluster's machines).
    private void NextGeneration() => _generation = Math.Max(_generation + 1, DateTime.UtcNow.Ticks);

    /// <summary>Every worker computed the same losses (for the first <paramref name="count"/> steps, or all of them, of equal count).</summary>
    private void CheckSameLosses(int firstStep, double[] losses, LinkedRunResult other, int count = -1)
    {
        var theirs = other.Losses.Values;
        if (count >= 0) theirs = theirs[..count];
        int differs = theirs.Length != losses.Length ? Math.Min(theirs.Length, losses.Length) : theirs.IndexOfAnyExcept(losses);
        if (differs >= 0)
            throw new InvalidOperationException($"Job {JobId} step {firstStep + differs}: workers computed different losses " +
                $"({(differs < losses.Length ? losses[differs].ToString("R") : "none")} and worker {other.Rank}'s {(differs < theirs.Length ? theirs[differs].ToString("R") : "none")}); every silo must use the same GEMM backend (TRAINER_BLAS).");
    }

    private InvalidOperationException LostShare(int rank) =>
        new($"Job {JobId}: worker {rank} lost its {(_split is null ? "replica" : "share")} of the parameters; no worker holds the parameters after step {_stepsCompleted} (its silo was lost).");

    private async Task QuietlyAsync(Func<Task> call)
    {
        try { await call(); }
        catch (Exception e) { logger.LogDebug("Job {Job}: {Error} while ending a failed window", JobId, e.Message); }
    }

    public async Task<ParameterTransfer> GetStateAsync()
    {
        if (_spec is null || _updates is null)
            throw new InvalidOperationException($"The parameter server of job {JobId} holds no parameters.");
        if (SeededStart) return new ParameterTransfer(_spec, 0, null, _uploadedData);
        if (_syncParameters is { } pending) return State(pending);
        if (_checkpointShares is { } kept && kept.StepsCompleted == _stepsCompleted)
            return State(_split is { } merger ? merger.Merge(kept.Shares) : kept.Shares[0]);
        if (_split is { } split)
        {
            var shares = new TensorPayload[_spec.Workers];
            for (int rank = 0; rank < shares.Length; rank++)
                shares[rank] = await ReplicaAsync(rank, _stepsCompleted, null)
                    ?? throw new InvalidOperationException($"Job {JobId}: no worker holds the parameters after step {_stepsCompleted} (worker {rank}'s share was lost with its silo).");
            return State(split.Merge(shares));
        }
        if (await FirstReplicaAsync(Enumerable.Range(0, _spec.Workers), _stepsCompleted, _pendingUpdate) is { } found) return State(found.Replica);
        // Worded as ResyncAsync's error: whichever notices first, the job grain restores its checkpoint.
        throw new InvalidOperationException($"Job {JobId}: no worker holds the parameters after step {_stepsCompleted} (their silos were lost).");
    }

    // Offered until read once; two may be out at a time (a checkpoint and a client's fetch).
    private ParameterTransfer State(TensorPayload parameters) =>
        new(_spec!, _stepsCompleted, Offers.Send("state", _updates!.ToFloat64(parameters), once: true, keep: 2), _uploadedData);

    /// <summary>
    /// Worker <paramref name="rank"/> answered that it holds no replica (it was re-activated after a
    /// crash): it gets a copy of a worker that computed this step, whose replica is exactly the
    /// parameters after step - 1, and computes again.
    /// </summary>
    private async Task<ShardGradient> ResyncAsync(int rank, WorkRequest request, ShardGradient[] results)
    {
        int donor = Array.FindIndex(results, r => !r.NeedsParameters);
        var parameters = donor < 0 ? null : await ReplicaAsync(donor, request.Step - 1, null);
        if (parameters is null)
            throw new InvalidOperationException($"Job {JobId} step {request.Step}: no worker holds the parameters after step {request.Step - 1} (their silos were lost).");
        logger.LogWarning("Job {Job} step {Step}: worker {Rank} lost its replica; it gets a copy of worker {Donor}'s", JobId, request.Step, rank, donor);
        var result = await ComputeWithRetryAsync(rank, request with { Parameters = Offers.Send("resync", parameters), Update = null, Seeded = false });
        Offers.Withdraw("resync");
        return result.NeedsParameters
            ? throw new InvalidOperationException($"Job {JobId} step {request.Step}: worker {rank} did not take the parameters it was sent.")
            : result;
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
        var result = await CallWithRetryAsync(rank, request.Step, worker => worker.ComputeAsync(request));
        return result.Rank != rank || result.Step != request.Step
            ? throw new InvalidOperationException($"Worker {rank} answered for rank {result.Rank}, step {result.Step}; expected step {request.Step}.")
            : result;
    }

    private async Task<T> CallWithRetryAsync<T>(int rank, int step, Func<IWorkerGrain, Task<T>> call)
    {
        var backoff = _options.RetryBackoff;
        var deadline = DateTime.UtcNow + _options.WorkerRetryBudget;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await call(Worker(rank)).WaitAsync(_options.WorkerCallTimeout);
            }
            catch (Exception e) when (IsTransient(e))
            {
                if (DateTime.UtcNow + backoff > deadline)
                    throw new TimeoutException($"worker {rank} of job {JobId} could not be reached for step {step} within {_options.WorkerRetryBudget.TotalSeconds:F0} s ({attempt} attempts; last error: {e.Message})", e);
                logger.LogWarning("Job {Job} step {Step}: worker {Rank} failed ({Error}); retry {Attempt} in {Backoff} ms",
                    JobId, step, rank, e.GetType().Name, attempt, backoff.TotalMilliseconds);
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
