using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// Keeps one shard and a replica of the parameters. Each step it applies the previous step's update
/// (sent by the parameter server) to its replica and computes its shard's summed loss and gradient
/// pack. The shard's rows are fetched (or, for synthetic data, regenerated from the seed) once per
/// activation. A worker re-activated on another silo after a crash rebuilds its shard from the
/// request and asks for parameters (<see cref="ShardGradient.NeedsParameters"/>); every replica
/// applies the same update with the same code, so they stay bit-identical.
/// On the links data plane (<see cref="DataPlane.Links"/>, the default across silos) the workers instead run
/// windows of steps on their own <see cref="LinkRunner"/> threads, exchanging their packs over
/// <see cref="WorkerLinks"/>, and each builds the update itself, in rank order. In a job that splits
/// its first layer the worker holds its slice of that layer and the whole batch, and exchanges
/// activation blocks the same way.
/// </summary>
/// <remarks>
/// The arithmetic runs on the silo's <see cref="ComputeScheduler"/> threads (a split job's on its
/// runner's thread), never on Orleans' scheduler. Right after answering, the worker multiplies out its own shard's factors for the
/// coming update while the other shards' factors travel, so a step waits only for theirs.
/// </remarks>
[RankPlacement]
public sealed class WorkerGrain(ILogger<WorkerGrain> logger, ComputeScheduler compute, WorkerLinks links, IOptions<SiloMessagingOptions> messaging) : Grain, IWorkerGrain
{
    // A share or replica too large for one message, offered to the parameter server until it has read it.
    private TensorOffers? _offers;
    // The current run of a job whose workers exchange blocks over links: its thread and links.
    private LinkRunner? _runner;
    private (long Generation, LinkedRunResult Result)? _lastRun;
    // The worker's part of the job on the Orleans data plane (the parameter server drives each step), or on links.
    private ShardReplica? _replica;
    private LinkedReplica? _linked;
    private TrainingSpec? _spec;
    private int _worldSize;
    private bool _factors;
    private Task _precompute = Task.CompletedTask;

    private int Rank => (int)this.GetPrimaryKeyLong(out _);

    private TensorOffers Offers => _offers ??= TensorOffers.For(this, messaging.Value);

    public IAsyncEnumerable<TensorChunk> ReadOfferAsync(long offer, int maxChunkBytes, long from, long to) => Offers.ReadAsync(offer, maxChunkBytes, from, to);

    private Task<TensorPayload> ReceiveAsync(TensorTransfer transfer) => Offers.ReceiveAsync(transfer);

    private string JobId
    {
        get
        {
            this.GetPrimaryKeyLong(out var jobId);
            return jobId!;
        }
    }

    public async Task<ShardGradient> ComputeAsync(WorkRequest request)
    {
        if (request.Spec.Parallelism == Parallelism.SplitFirstLayer)
            throw new InvalidOperationException($"Job {JobId} splits its first layer; its workers run whole windows of steps (RunWindowAsync).");
        if (_replica is null || _spec != request.Spec || _worldSize != request.WorldSize || _factors != request.Factors)
            await LoadAsync(request.Spec, request.WorldSize, request.UploadedData, request.Factors, linked: false);
        var replica = _replica!;
        int rank = Rank;
        var sent = request.Parameters is { } transfer ? await ReceiveAsync(transfer) : null;
        await _precompute;
        var result = await compute.Run(() =>
        {
            if ((sent ?? (request.Seeded && request.Step == 1 ? InitialParameters.InJobPrecision(request.Spec) : null)) is { } parameters)
                replica.Load(parameters, request.Step - 1);
            else if (request.Update is { } update && replica.StepsApplied == request.Step - 2) replica.Apply(update);
            // Anything else (no replica, or one from another point of the job) cannot be brought up to date from this request.
            if (replica.StepsApplied != request.Step - 1)
                return new ShardGradient(rank, request.Step, double.NaN, TensorPayload.Empty, NeedsParameters: true);
            var (loss, pack) = replica.Compute();
            return new ShardGradient(rank, request.Step, loss, pack);
        });
        if (!result.NeedsParameters && replica.HasFactors) _precompute = compute.Run(() => replica.PrecomputeOwn(rank));
        return result;
    }

    public Task<string> PrepareLinksAsync() => Task.FromResult(links.Endpoint);

    /// <summary>
    /// A window of steps over links (a split job, or a data-parallel job on the links data plane).
    /// A run with parameters (a new generation) loads this worker's share or replica, links it to
    /// the other workers and starts its <see cref="LinkRunner"/>; a run without continues the
    /// runner of its generation, which must stand where the window starts.
    /// </summary>
    public async Task<LinkedRunResult> RunWindowAsync(LinkedRun run)
    {
        if (_lastRun is { } last && last.Generation == run.Generation && last.Result.FirstStep == run.FirstStep) return last.Result;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(run.Steps);
        int rank = Rank;
        TensorPayload? parameters = null;
        if (run.Starts)
        {
            _runner?.Dispose();
            _runner = null;
            if (run.Endpoints is not { } endpoints || endpoints.Length != run.Spec.Workers)
                throw new ArgumentException($"Job {JobId}: a run that starts needs every worker's link endpoint ({run.Spec.Workers}).", nameof(run));
            if (_linked is null || _spec != run.Spec || _factors != run.Factors) await LoadAsync(run.Spec, run.Spec.Workers, run.UploadedData, run.Factors, linked: true);
            if (run.Parameters is { } transfer) parameters = await ReceiveAsync(transfer);
            else
            {
                if (run.FirstStep != 1) throw new ArgumentException($"Job {JobId}: a run from the seed's parameters must start at step 1, not {run.FirstStep}.", nameof(run));
                parameters = await compute.Run(() => InitialParameters.InJobPrecision(run.Spec));
            }
            var peers = await links.OpenAsync(JobId, run.Generation, rank, endpoints);
            _runner = new LinkRunner(run.Generation, rank, _linked!, peers, JobId);
            logger.LogInformation("Worker {Rank} of job {Job} linked to workers {Peers} for run {Generation}",
                rank, JobId, string.Join(", ", Enumerable.Range(0, endpoints.Length).Where(p => p != rank).Select(p => $"{p} ({(endpoints[p] == endpoints[rank] ? "same silo" : endpoints[p])})")), run.Generation);
        }
        else if (_runner is not { Broken: false } runner || runner.Generation != run.Generation || _linked!.StepsApplied != run.FirstStep - 1)
        {
            return new LinkedRunResult(rank, run.FirstStep, TensorPayload.Empty, NeedsParameters: true);
        }
        var window = await _runner.RunAsync(run.FirstStep, run.Steps, parameters, run.ShareAtEnd);
        var answer = new LinkedRunResult(rank, run.FirstStep, TensorPayload.From(window.Losses), Share: Offers.SendOptional("share", window.Share, once: true), Failure: window.Failure);
        _lastRun = (run.Generation, answer);
        return answer;
    }

    public Task AbortRunAsync(long generation)
    {
        if (_runner is { } runner && runner.Generation <= generation) runner.Abort();
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _runner?.Dispose();
        _runner = null;
        // A connection a peer opened for a run this worker never took up would otherwise stay parked in the silo.
        links.Release(JobId, Rank);
        return Task.CompletedTask;
    }

    public async Task<TensorTransfer?> GetReplicaAsync(int stepsCompleted, TensorPayload? pendingUpdate) =>
        Offers.SendOptional("replica", await SnapshotAsync(stepsCompleted, pendingUpdate), once: true);

    private async Task<TensorPayload?> SnapshotAsync(int stepsCompleted, TensorPayload? pendingUpdate)
    {
        if (_linked is { } linked) return await compute.Run(() => linked.StepsApplied == stepsCompleted ? linked.Share() : null);
        if (_replica is not { } replica) return null;
        await _precompute;
        return await compute.Run(() =>
        {
            if (pendingUpdate is not null && replica.StepsApplied == stepsCompleted - 1) replica.Apply(pendingUpdate);
            return replica.StepsApplied == stepsCompleted ? replica.Snapshot() : null;
        });
    }

    public Task ReleaseAsync()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    /// <param name="linked">Whether the worker runs windows of steps over links (<see cref="RunWindowAsync"/>) rather than one step per <see cref="ComputeAsync"/>.</param>
    private async Task LoadAsync(TrainingSpec spec, int worldSize, bool uploadedData, bool factors, bool linked)
    {
        bool split = spec.Parallelism == Parallelism.SplitFirstLayer;
        var plan = ExchangePlan.For(spec, factors);
        var shard = Shard.Split(spec.Batch, worldSize)[Rank];
        // A split job, or a factored first layer, needs the whole batch's inputs on every worker; otherwise the shard's rows suffice.
        var (first, count) = split || plan.NeedsBatchInputs ? (0, spec.Batch) : (shard.Start, shard.Count);
        var uploaded = await Offers.ReceiveAsync(await GrainFactory.GetGrain<IDatasetGrain>(JobId).GetRowsAsync(first, count));
        // NOTE: a dataset grain lost with its silo comes back empty; training on synthetic data instead would be silently wrong.
        if (uploaded is null && uploadedData)
            throw new InvalidOperationException($"Worker {Rank} of job {JobId}: the job's uploaded data is gone (its silo was lost); the job must restore it.");
        var rows = uploaded is null
            ? Synthetic.Data(spec.Batch, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed)
            : new Dataset(uploaded.X.ToArray(), uploaded.Y.ToArray(), uploaded.Count, uploaded.InputSize, uploaded.OutputSize);
        string source = uploaded is null ? "synthetic" : "uploaded";
        _spec = spec;
        _worldSize = worldSize;
        _factors = factors;
        _precompute = Task.CompletedTask;
        if (split)
        {
            _linked = SplitReplica.Create(spec, Rank, rows);
            _replica = null;
            var units = FirstLayerSplit<double>.UnitSlices(spec)[Rank];
            logger.LogInformation("Worker {Rank}/{WorldSize} of job {Job} loaded all {Batch} samples ({Source}); it owns units [{Start}, {End}) of the first layer; {Precision}",
                Rank, worldSize, JobId, spec.Batch, source, units.Start, units.End, spec.Precision.Name());
            return;
        }
        int offset = uploaded is null ? 0 : first;
        var shardData = rows.Slice(shard with { Start = shard.Start - offset });
        if (linked)
        {
            _linked = DataReplica.Create(spec, plan, Rank, shardData, plan.NeedsBatchInputs ? rows.X : null);
            _replica = null;
        }
        else
        {
            _replica = ShardReplica.Create(spec, plan, shardData, plan.NeedsBatchInputs ? rows.X : null);
            _linked = null;
        }
        logger.LogInformation("Worker {Rank}/{WorldSize} of job {Job} loaded samples [{Start}, {End}) ({Source}); engine {Engine}, {Precision}; exchange: {Plan}, {Plane}",
            Rank, worldSize, JobId, shard.Start, shard.End, source, spec.Engine, spec.Precision.Name(), plan.Describe(),
            linked ? "packs to the other workers over links" : "packs through the parameter server");
    }
}
