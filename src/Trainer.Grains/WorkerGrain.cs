using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// A data-parallel worker keeps one shard and a cache of the parameters. Each step the parameter
/// server's request brings the cache up to date (the parameters, or with plain SGD the previous
/// step's update, applied with the server's own code) and the worker computes its shard's summed
/// loss and gradient pack. The shard's rows are read from what its silo holds of the job's data for
/// all its grains (uploaded rows: <see cref="SiloUploads"/>; files: <see cref="StoredFiles"/>), or for
/// synthetic data regenerated from the seed, once per activation. A worker re-activated on another silo after a crash rebuilds its shard
/// from the request and asks for parameters (<see cref="ShardGradient.NeedsParameters"/>).
/// In a job that splits its first layer the worker owns its slice of that layer (and the slice's
/// optimizer state) and the whole batch, and runs windows of steps on its own <see cref="LinkRunner"/>
/// thread, exchanging activation blocks with the other workers over <see cref="WorkerLinks"/>.
/// </summary>
/// <remarks>
/// The arithmetic runs on the silo's <see cref="ComputeScheduler"/> threads (a split job's on its
/// runner's thread), never on Orleans' scheduler. Right after answering, the worker multiplies out its own shard's factors for the
/// coming update while the other shards' factors travel, so a step waits only for theirs.
/// </remarks>
[RankPlacement]
public sealed class WorkerGrain(ILogger<WorkerGrain> logger, ComputeScheduler compute, WorkerLinks links, StepTeams teams, IOptions<SiloMessagingOptions> messaging,
    GemmThreadBudget gemmThreads, StoredFiles files, SiloUploads uploads, ILocalSiloDetails silo, IdleMemory idle, JobSilos jobs) : Grain, IWorkerGrain
{
    // A share or replica too large for one message, offered to the parameter server until it has read it.
    private TensorOffers? _offers;
    // The current run of a split job: its thread and links.
    private LinkRunner? _runner;
    private (long Generation, LinkedRunResult Result)? _lastRun;
    // A data-parallel job's run: the thread that takes the parameter server's requests from its link, or a seat in its step team.
    private IShardRun? _shardRunner;
    // The worker's part of a data-parallel job (the parameter server drives each step), or of a split job.
    private ShardReplica? _replica;
    private LinkedReplica? _linked;
    private TrainingSpec? _spec;
    // The job's rows as this silo holds them (its files, or its uploaded rows), held while the worker reads them.
    private IDisposable? _held;
    private int _worldSize;
    private bool _factors;
    private Task _precompute = Task.CompletedTask;
    // The parameter server's latest step call (a step, or a window's first step) and whether it runs, for ProbeAsync.
    private (int Step, bool Running) _call;

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

    public Task<ShardGradient> ComputeAsync(WorkRequest request) => Tracked(request.Step, ComputeStepAsync, request);

    public Task<LinkedRunResult> RunWindowAsync(LinkedRun run) => Tracked(run.FirstStep, RunLinkedWindowAsync, run);

    public Task<WorkerCallState> ProbeAsync(int step) => Task.FromResult(
        _call.Step != step ? WorkerCallState.NotReceived : _call.Running ? WorkerCallState.Running : WorkerCallState.Answered);

    private async Task<TResult> Tracked<TRequest, TResult>(int step, Func<TRequest, Task<TResult>> run, TRequest request)
    {
        _call = (step, true);
        try
        {
            return await run(request);
        }
        finally
        {
            _call = (step, false);
        }
    }

    private async Task<ShardGradient> ComputeStepAsync(WorkRequest request)
    {
        if (request.Spec.Parallelism == Parallelism.SplitFirstLayer)
            throw new InvalidOperationException($"Job {JobId} splits its first layer; its workers run whole windows of steps (RunWindowAsync).");
        // The parameter server ended its run over links (or lost it): this step comes through Orleans.
        await StopShardRunAsync();
        if (_replica is null || _spec != request.Spec || _worldSize != request.WorldSize || _factors != request.Factors)
            await LoadAsync(request.Spec, request.WorldSize, request.UploadedData, request.Factors, request.SiloData);
        var replica = _replica!;
        int rank = Rank;
        // Parameters from another silo are read straight into the cache (a whole model's array a step otherwise).
        var sent = request.Parameters is { } transfer ? await Offers.ReceiveAsync(transfer, into: replica.ReceiveBuffer)
            : request.ParameterRanges is { } ranges ? await ReceiveRangesAsync(request.Spec, replica, ranges) : null;
        var update = request.Update is { } updateTransfer ? await ReceiveAsync(updateTransfer) : null;
        await _precompute;
        var result = await compute.Run<(double[] Losses, TensorPayload? Pack)>(() =>
        {
            // Drawn straight into the cache: no whole model's array of their own.
            var parameters = sent ?? (request.Seeded && request.Step == 1
                ? InitialParameters.DrawInto(request.Spec, replica.ReceiveBuffer(ParameterLayout.For(request.Spec.Model).Count * request.Spec.Precision.Size()))
                : null);
            return replica.CatchUp(request.Step, parameters, update) ? replica.Compute() : ([], null);
        });
        // A pack too large for one message is offered until the server reads it (before the next step reuses its buffer).
        var answer = result.Pack is { } computed
            ? new ShardGradient(rank, request.Step, result.Losses, Offers.Send("pack", computed))
            : new ShardGradient(rank, request.Step, [], TensorTransfer.Of(TensorPayload.Empty), NeedsParameters: true);
        // A cache sent the parameters every step never applies an update: its own share of one would be a
        // whole first layer's product (as large as the model) computed for nothing.
        if (!answer.NeedsParameters && replica.HasFactors && ServerModel.CachesFollowUpdatesOf(request.Spec)) _precompute = compute.Run(replica.PrecomputeOwn);
        return answer;
    }

    /// <summary>
    /// The parameters from a sharded parameter server's shards, range k from shard k, each chunk put straight
    /// into its place in the cache as it arrives (from a shard on this silo, copied from the shard's own array).
    /// </summary>
    private async Task<TensorPayload> ReceiveRangesAsync(TrainingSpec spec, ShardReplica replica, TensorTransfer[] ranges)
    {
        int count = ParameterLayout.For(spec.Model).Count, size = spec.Precision.Size();
        var shards = Shard.Split(count, spec.ResolvedParameterServerShards());
        if (ranges.Length != shards.Length)
            throw new ArgumentException($"Job {JobId}: the parameters came in {ranges.Length} ranges; the job's parameter server has {shards.Length} shards.", nameof(ranges));
        var cache = replica.ReceiveBuffer(count * size);
        void Place(int k, TensorChunk chunk)
        {
            if (chunk.TotalBytes != (long)shards[k].Count * size)
                throw new InvalidOperationException($"Job {JobId}: parameter-server shard {k} offered {chunk.TotalBytes} bytes of parameters for its {shards[k].Count} {spec.Precision.Name()} values.");
            chunk.Bytes.CopyTo(cache.Bytes, (long)shards[k].Start * size + chunk.Offset);
        }
        await Task.WhenAll(ranges.Select((range, k) => Offers.ReceiveChunksAsync(range, chunk => Place(k, chunk))));
        return cache;
    }

    public Task<string> PrepareLinksAsync() => Task.FromResult(links.Prepare(JobId, Rank));

    public async Task StartShardRunAsync(ShardRun run)
    {
        await StopShardRunAsync();
        int rank = Rank, server = run.Spec.Workers;
        if (!run.Team && run.Endpoints.Length != server + 1)
            throw new ArgumentException($"Job {JobId}: a run over links needs every worker's link endpoint and the parameter server's ({server + 1}), not {run.Endpoints.Length}.", nameof(run));
        bool loaded = _replica is not null && _spec == run.Spec && _worldSize == server && _factors == run.Factors;
        // A team computes at the server's parameters: a worker needs only its rows and buffers, loaded now if it has none yet (a job's first step).
        if (run.Team && !loaded) await LoadAsync(run.Spec, server, run.UploadedData, run.Factors, run.SiloData);
        else if (!loaded || _replica!.StepsApplied < 0)
            throw new StateLostException($"Worker {rank} of job {JobId} holds no cache of the parameters for run {run.Generation} (it was re-activated); its next step comes through Orleans.");
        // The cache is the runner's from now on: the last precompute must be done with it.
        await _precompute;
        _precompute = Task.CompletedTask;
        if (run.Team)
        {
            _shardRunner = teams.Join(JobId, run.Generation, rank, _replica!);
            logger.LogInformation("Worker {Rank} of job {Job} joins the parameter server's step team for run {Generation} (same silo: it computes at the server's parameters)", rank, JobId, run.Generation);
            return;
        }
        var peers = await links.OpenAsync(JobId, run.Generation, rank, run.Endpoints, peers: [server]);
        _shardRunner = new ShardRunner(run.Generation, run.FirstStep, rank, _replica!, peers[server]!, JobId, logger);
        logger.LogInformation("Worker {Rank} of job {Job} takes its steps over a link to the parameter server ({Where}) for run {Generation}",
            rank, JobId, run.Endpoints[server] == run.Endpoints[rank] ? "same silo" : run.Endpoints[server], run.Generation);
    }

    /// <summary>Ends this worker's run over links, if any, once its thread is done with the cache.</summary>
    private async Task StopShardRunAsync()
    {
        if (_shardRunner is not { } runner) return;
        _shardRunner = null;
        await runner.StopAsync();
    }

    /// <summary>
    /// A window of a split job's steps over links.
    /// A run with a model state (a new generation) loads this worker's share, links it to
    /// the other workers and starts its <see cref="LinkRunner"/>; a run without continues the
    /// runner of its generation, which must stand where the window starts.
    /// </summary>
    private async Task<LinkedRunResult> RunLinkedWindowAsync(LinkedRun run)
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
            if (_linked is null || _spec != run.Spec) await LoadAsync(run.Spec, run.Spec.Workers, run.UploadedData, run.Factors, run.SiloData);
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
        if (window.Failure is { } failure) Report(run, window.Losses.Length, failure);
        var answer = new LinkedRunResult(rank, run.FirstStep, TensorPayload.From(window.Losses), Share: Offers.SendOptional("share", window.Share, once: true),
            Failure: window.Failure is { } error ? Failures.Describe(error) : null);
        _lastRun = (run.Generation, answer);
        return answer;
    }

    /// <summary>
    /// Logs why this worker's window stopped, with the whole exception; a failure no replay can fix
    /// (a bug in the step) is thrown to the parameter server, which fails the job with it.
    /// </summary>
    private void Report(LinkedRun run, int done, Exception failure)
    {
        if (Failures.Classify(failure) == FailureKind.Fatal)
        {
            logger.LogError(failure, "Worker {Rank} of job {Job}: the window from step {Step} failed after {Done} steps with an error no replay can fix",
                Rank, JobId, run.FirstStep, done);
            ExceptionDispatchInfo.Throw(failure);
        }
        logger.LogWarning(failure, "Worker {Rank} of job {Job}: the window from step {Step} stopped after {Done} steps: {Error}", Rank, JobId, run.FirstStep, done, failure.Message);
    }

    public Task AbortRunAsync(long generation)
    {
        if (_runner is { } runner && runner.Generation <= generation) runner.Abort();
        return Task.CompletedTask;
    }

    // Counted while active: a process where none is gives its free memory back (IdleMemory).
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        idle.Enter();
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        try
        {
            // NOTE: a precompute still reading held rows must end before they are handed back (files unmapped).
            try { await _precompute; } catch (Exception e) { logger.LogDebug(e, "Worker {Rank} of job {Job}: the last precompute failed", Rank, JobId); }
            await StopShardRunAsync();
            _runner?.Dispose();
            _runner = null;
            // A connection a peer opened for a run this worker never took up would otherwise stay parked in the silo.
            links.Release(JobId, Rank);
            _held?.Dispose();
            _held = null;
        }
        finally
        {
            idle.Exit();
        }
    }

    /// <summary>
    /// The rows [first, first + count) of the job's uploaded data as this silo holds them (<see cref="SiloUploads"/>,
    /// held until the worker unloads), or of the synthetic data its seed draws.
    /// </summary>
    private async Task<(ISampleRows Rows, string Source)> UploadedOrSynthetic(TrainingSpec spec, bool uploadedData, int first, int count)
    {
        var uploaded = await uploads.AcquireAsync(GrainFactory, JobId, spec, Offers.ReceiveAsync);
        // NOTE: a dataset grain lost with its silo comes back empty; training on synthetic data instead would be silently wrong.
        if (uploaded is null && uploadedData)
            throw new StateLostException($"Worker {Rank} of job {JobId}: the job's uploaded data is gone (its silo was lost); the job must restore it.");
        if (uploaded is not null) return (Hold(uploaded, uploaded.Rows).Range(first, count), $"uploaded as {uploaded.Rows.InputEncoding}, held once per silo");
        // Synthetic rows: the stream runs through every row, and only the ones an uploaded request would have brought are kept.
        // A float32 job's are drawn in float32 (the same bits as narrowing the float64 draws).
        return (spec.Precision == Precision.Float32
            ? Synthetic.RowsAsFloat32(spec.ResolvedSamples, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed, first, count)
            : Synthetic.Rows(spec.ResolvedSamples, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed, first, count), "synthetic");
    }

    /// <summary>
    /// The job's rows from its files on this silo, held until the worker unloads. A file this silo cannot
    /// read, or reads other than the job was built for, fails the job (<see cref="SiloJobData.OpenFor"/>).
    /// </summary>
    private ISampleRows OpenFiles(SiloData data, TrainingSpec spec)
    {
        var opened = SiloJobData.OpenFor(data, spec, files, silo.SiloAddress.Endpoint.ToString());
        return Hold(opened, opened.Rows(spec));
    }

    /// <summary>Keeps <paramref name="held"/> (whose rows are <paramref name="rows"/>) and lets go of the rows held before.</summary>
    private ISampleRows Hold(IDisposable held, ISampleRows rows)
    {
        // Taken before the old ones are handed back: the same rows stay held, not mapped, decompressed or fetched twice.
        _held?.Dispose();
        _held = held;
        return rows;
    }

    /// <summary>Without mini-batches the replica copied its rows once: the silo need not hold them for it.</summary>
    private void ReleaseCopiedRows(TrainingSpec spec)
    {
        if (spec.MiniBatches) return;
        _held?.Dispose();
        _held = null;
    }

    public async Task<TensorTransfer?> GetShareAsync(int stepsCompleted) =>
        Offers.SendOptional("share", _linked is { } linked ? await compute.Run(() => linked.StepsApplied == stepsCompleted ? linked.Share() : null) : null, once: true);

    public Task ReleaseAsync()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    private async Task LoadAsync(TrainingSpec spec, int worldSize, bool uploadedData, bool factors, SiloData? siloData)
    {
        // NOTE: the last precompute may still read the rows (files this reload may hand back).
        await _precompute;
        bool split = spec.Parallelism == Parallelism.SplitFirstLayer;
        var plan = ExchangePlan.For(spec, factors);
        var shard = plan.Micro.RowsOf(Rank, worldSize);
        // Mini-batches: every row (each step's shard is gathered from them). A split job, or a factored
        // first layer, needs the whole batch's inputs on every worker; otherwise the shard's rows suffice.
        var (first, count) = spec.MiniBatches ? (0, spec.ResolvedSamples) : split || plan.NeedsBatchInputs ? (0, spec.Batch) : (shard.Start, shard.Count);
        var (rows, source) = siloData is not null ? (OpenFiles(siloData, spec).Range(first, count), "read from files on this silo")
            : await UploadedOrSynthetic(spec, uploadedData, first, count);
        _spec = spec;
        // A silo hosting a job's grain may place one of them: a silo that leaves forwards its grains' pending
        // messages, and the forwarding places the grain again from here.
        jobs.Remember(JobId, spec.Gemm);
        _worldSize = worldSize;
        _factors = factors;
        _precompute = Task.CompletedTask;
        int threads = gemmThreads.Apply(spec.Gemm, worldSize);
        logger.LogInformation("Worker {Rank} of job {Job}: {Threads} thread(s) per GEMM", Rank, JobId, threads);
        if (split)
        {
            _linked = SplitReplica.Create(spec, Rank, rows);
            _replica = null;
            ReleaseCopiedRows(spec);
            var units = FirstLayerSplit<double>.UnitSlices(spec)[Rank];
            logger.LogInformation("Worker {Rank}/{WorldSize} of job {Job} loaded all {Batch} samples ({Source}); it owns units [{Start}, {End}) of the first layer; {Precision}",
                Rank, worldSize, JobId, spec.Batch, source, units.Start, units.End, spec.Precision.Name());
            return;
        }
        _replica = ShardReplica.Create(spec, plan, Rank, rows, first);
        _linked = null;
        ReleaseCopiedRows(spec);
        if (spec.MiniBatches)
            logger.LogInformation("Worker {Rank}/{WorldSize} of job {Job} loaded all {Samples} samples ({Source}) for mini-batches of {Batch}; engine {Engine}, {Precision}; exchange: {Plan}",
                Rank, worldSize, JobId, spec.ResolvedSamples, source, spec.Batch, spec.Engine, spec.Precision.Name(), plan.Describe());
        else
            logger.LogInformation("Worker {Rank}/{WorldSize} of job {Job} loaded samples [{Start}, {End}) ({Source}); engine {Engine}, {Precision}; exchange: {Plan}",
                Rank, worldSize, JobId, shard.Start, shard.End, source, spec.Engine, spec.Precision.Name(), plan.Describe());
    }
}
