using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Memory;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// Owns a job's model. For a data-parallel job it holds the authoritative parameters and the
/// optimizer's state (<see cref="ServerModel"/>; sharded, its parameter-server shards hold both and
/// offer the workers their ranges); each step it sends every worker what its cache of
/// the parameters lacks, collects each shard's loss and gradient pack, adds them in SHARD order
/// (never arrival order) into the step's update, and applies the optimizer. The result is the
/// single-process run's (LocalTrainer), bit-reproducible for a given worker count; checkpoints are
/// read from here. A job that splits its first layer (model parallelism of that layer) is driven a
/// window of steps at a time instead: each worker owns its slice of the first layer and that
/// slice's optimizer state, the workers exchange their activations over links, and the server
/// starts each window, checks that every worker computed the same losses, and merges the workers'
/// shares for a checkpoint. A data-parallel job's server also scores its parameters on the held-out
/// rows (<see cref="HeldOutEvaluation"/>) and ends a batch where early stopping stops the job; that
/// state goes into every checkpoint with the model state.
/// </summary>
/// <remarks>
/// Placed beside the job grain that activates it: the job talks to it every batch of steps (on a silo
/// that runs the job's GEMM kernel: <see cref="ServerPlacement"/>). A
/// worker re-activated after a crash is sent the server's parameters; a lost server (or a lost split
/// worker, which held the only copy of its slice) fails the step and the job restores its checkpoint.
/// </remarks>
[ServerPlacement]
public sealed class ParameterServerGrain(
    ILogger<ParameterServerGrain> logger, IOptions<TrainerOptions> options, IClusterMembershipService membership, ComputeScheduler compute, IOptions<SiloMessagingOptions> messaging,
    StoredFiles files, SiloUploads uploads, ILocalSiloDetails silo, WorkerLinks links, StepTeams teams, IdleMemory idle, JobSilos jobs)
    : Grain, IParameterServerGrain
{
    private readonly TrainerOptions _options = options.Value;
    // Tensors too large for one message, which the workers (parameters, updates) or the job grain (a "state") read in chunks.
    private TensorOffers? _offers;
    private TrainingSpec? _spec;
    private int _stepsCompleted;
    private StepBatch? _lastBatch;
    private bool _uploadedData;
    // A job whose data stays on the silos: where it is, and its files as this silo holds them (open
    // while the server needs their rows: a factored first layer's inputs; none otherwise).
    private SiloData? _siloData;
    private SiloJobData? _files;
    // A job's uploaded rows as this silo holds them (SiloUploads), while the server needs them: a factored
    // first layer's inputs in the job's precision, the held-out rows in float64.
    private List<SiloUploads.HeldRows> _uploads = [];
    private bool _factors;
    // A data-parallel job's parameters, optimizer state and update.
    private ServerModel? _model;
    // Sharded: each shard's offer of its range of the parameters after the steps done (from its load or
    // its last step), which the workers read from the shards themselves.
    private TensorTransfer[] _shardParameters = [];
    // What scores the job's held-out sets (validation, test: the rows after its training samples) and
    // keeps early stopping's state, and a float64 copy of the parameters to score.
    private HeldOutEvaluation? _heldOut;
    private double[] _scored = [];
    // Whether the workers' caches must be (re)loaded before the next step: after every initialisation.
    private bool _workersLoad;
    // A step 0 whose spec draws the initial parameters: every worker draws its cache itself (InitialParameters).
    private bool _seeded;
    // The workers were let go as the final state was taken (TakeFinalStateAsync): releasing them again would activate them anew.
    private bool _workersReleased;
    // SGD's pending update applied on a compute thread while the workers compute the next step.
    private Task _applying = Task.CompletedTask;
    // A job that splits its first layer: merges the workers' shares. Its model state (job precision)
    // that the workers still have to load, and its runs' generation (new at every initialisation:
    // it names the run's links, so an older run's can never be mixed in), and its window in steps.
    private SplitServer? _split;
    private TensorPayload? _splitState;
    private long _generation;
    private int _linkedWindow = 1;
    // The split workers' shares after the last window that ended at the job grain's bound.
    private (int StepsCompleted, TensorPayload[] Shares)? _checkpointShares;

    // A data-parallel job on the links data plane (Trainer:DataPlane), and its current run over them (none
    // before a first step through Orleans, and after a run broke).
    private bool _linksPlane;
    private IStepRun? _run;

    // A run broke: its next step goes through Orleans, which sends a re-activated worker the parameters,
    // even when the break ended a batch (a new run started at once would find that worker without a cache).
    private bool _brokeRun;

    // The calls to the job's workers: retries, probes of calls without an answer.
    private WorkerCalls? _workers;

    // An error no replay can fix that ended the last batch after some of its steps: the batch answered
    // their losses, and every later call for the model fails with it (its stack kept) until a restore.
    private ExceptionDispatchInfo? _fatal;

    private string JobId => this.GetPrimaryKeyString();

    private TensorOffers Offers => _offers ??= TensorOffers.For(this, messaging.Value);

    public IAsyncEnumerable<TensorChunk> ReadOfferAsync(long offer, int maxChunkBytes, long from, long to) => Offers.ReadAsync(offer, maxChunkBytes, from, to);

    private Task<TensorPayload?> ReceiveAsync(TensorTransfer? transfer) => Offers.ReceiveOptionalAsync(transfer);

    public async Task InitializeAsync(ParameterTransfer transfer)
    {
        _fatal = null;
        var state = await Offers.ReceiveAsync(transfer);
        var spec = state.Spec;
        if (state.Parameters is null && state.StepsCompleted != 0)
            throw new ArgumentException($"Job {JobId}: parameters after step {state.StepsCompleted} are missing; only step 0 may come without them (drawn from the seed).", nameof(transfer));
        await _applying;
        EndRun();
        _spec = spec;
        // This silo places the job's workers and shards: on silos that run its kernel.
        jobs.Remember(JobId, spec.Gemm);
        // Within one silo nothing crosses a network: dense packs (no duplicated factor products).
        bool spansSilos = ActiveSilos > 1;
        _factors = _options.Exchange switch
        {
            ExchangeMode.Dense => false,
            ExchangeMode.Factors => true,
            _ => spansSilos,
        };
        var plan = ExchangePlan.For(spec, _factors);
        Offers.Withdraw("sync");
        Offers.Withdraw("update");
        Offers.Withdraw("state");
        _shardParameters = [];
        _stepsCompleted = state.StepsCompleted;
        _lastBatch = null;
        _uploadedData = state.UploadedData;
        _siloData = state.SiloData;
        // Handed back once the new ones are held (below): the same rows stay held, not mapped, decompressed or fetched twice.
        var (previous, previousUploads) = (_files, _uploads);
        (_files, _uploads) = (null, []);
        _seeded = state.Parameters is null;
        _workersLoad = true;
        _workersReleased = false;
        _checkpointShares = null;
        if (spec.Parallelism == Parallelism.SplitFirstLayer)
        {
            _model = null;
            _heldOut = null;
            _split = SplitServer.Create(spec);
            _splitState = state.ModelState is { } loaded ? _split.FromFloat64(loaded) : null;
            NextGeneration();
            _linkedWindow = 1;
            Release(previous, previousUploads);
            logger.LogInformation("Job {Job}: the first layer's {Units} units are split over {Workers} workers, each applying optimizer {Optimizer} to its slice; they exchange activations",
                JobId, spec.Model.LayerSizes[1], spec.Workers, spec.Optimizer.Name);
            return;
        }
        _split = null;
        _splitState = null;
        _model = ServerModel.Create(spec, plan, compute);
        var inputs = plan.NeedsBatchInputs ? await InputsAsync(spec) : null;
        // Drawn from the seed: an unsharded server draws them straight into its own parameters; shards are sent their ranges.
        var modelState = state.ModelState ?? (_model.Sharded ? new ModelState(await compute.Run(() => InitialParameters.Float64(spec))) : null);
        await compute.Run(() => _model.Load(modelState, _stepsCompleted, inputs));
        if (_model.Sharded) await LoadShardsAsync(spec, modelState!);
        await LoadHeldOutAsync(spec, state);
        // Without mini-batches the model copied the batch's inputs; only held-out rows keep the rows held then.
        if (!spec.MiniBatches && spec.HeldOutSamples == 0)
        {
            ReleaseHeld();
        }
        Release(previous, previousUploads);
        _linksPlane = !_model.Sharded && _options.DataPlane switch
        {
            DataPlane.Links => true,
            DataPlane.Messages => false,
            _ => spansSilos || TeamFits(spec),
        };
        logger.LogInformation("Job {Job}: {Holder} optimizer {Optimizer}; exchange {Plan}; the workers' caches get {Refresh}; steps travel {Plane}",
            JobId, _model.Sharded ? $"{_model.Ranges.Count} parameter-server shards hold the parameters and the optimizer state and apply" : "the parameter server holds the parameters and applies",
            spec.Optimizer.Name, plan.Describe(),
            _model.CachesFollowUpdates ? "each step's update" : _model.Sharded ? "the new parameters from the shards each step" : "the new parameters each step",
            !_linksPlane ? "in Orleans messages" : !spansSilos && TeamFits(spec) ? "in a step team (one silo: the workers compute at the server's parameters in place)" : "over links");
    }

    private IParameterShardGrain ParameterShard(int shard) => GrainFactory.GetGrain<IParameterShardGrain>(shard, JobId);

    /// <summary>Gives every parameter-server shard its range of the model state (all at once, each read in chunks when large).</summary>
    private async Task LoadShardsAsync(TrainingSpec spec, ModelState modelState)
    {
        var model = _model!;
        try
        {
            var ranges = await compute.Run(() => model.Ranges.Select(range => ServerModel.RangeOf(modelState, range)).ToArray());
            _shardParameters = await Task.WhenAll(model.Ranges.Select((_, k) => ParameterShard(k).LoadAsync(new ShardLoad(spec, _stepsCompleted, Offers.Send($"load-{k}", ranges[k])))));
        }
        finally
        {
            for (int k = 0; k < model.Ranges.Count; k++) Offers.Withdraw($"load-{k}");
        }
    }

    /// <summary>
    /// A sharded server's optimizer step: the full-batch gradient goes to the shards by range (all at
    /// once), each steps its range and its state and offers its new parameters, which the workers then
    /// read from the shards themselves: this server holds no copy of the parameters to send them.
    /// </summary>
    private async Task StepShardsAsync(int step)
    {
        var model = _model!;
        var gradients = await compute.Run(() =>
        {
            model.BuildGradient();
            return model.Ranges.Select((_, k) => model.GradientRange(k)).ToArray();
        });
        _shardParameters = await Task.WhenAll(gradients.Select((gradient, k) => ParameterShard(k).StepAsync(step, Offers.Send($"gradient-{k}", gradient))));
    }

    /// <summary>The parameters after the steps done into <paramref name="to"/> (float64): from the shards' offers, chunk by chunk into place, when sharded.</summary>
    private async Task CopyParametersAsync(ServerModel model, double[] to)
    {
        if (model.Sharded) await Task.WhenAll(_shardParameters.Select((range, k) => Offers.ReceiveChunksAsync(range, chunk => model.PlaceState(_ => to, k, slots: false, chunk))));
        else await compute.Run(() => model.CopyParameters(to));
    }

    /// <summary>
    /// The job's held-out sets: the <see cref="TrainingSpec.HeldOutSamples"/> rows after its training
    /// samples in the uploaded data (validation, then test), and early stopping's state and best
    /// parameters from <paramref name="state"/> (a checkpoint's; none at the start).
    /// </summary>
    private async Task LoadHeldOutAsync(TrainingSpec spec, ParameterState state)
    {
        if (spec.HeldOutSamples == 0)
        {
            _heldOut = null;
            return;
        }
        ISampleRows heldOut;
        // Held-out rows on the silos are scored where they lie, a thousand at a time; the files stay open for it.
        if (_siloData is not null) heldOut = Files(spec).Rows(spec).Range(spec.ResolvedSamples, spec.HeldOutSamples);
        // Uploaded ones are scored in float64 whatever the job's precision, as the single-process run scores them.
        else heldOut = (await UploadedAsync(spec)
            ?? throw new StateLostException($"The parameter server of job {JobId}: the job's held-out rows are gone (their silo was lost); the job must restore them."))
            .Range(spec.ResolvedSamples, spec.HeldOutSamples);
        _heldOut = new HeldOutEvaluation(spec, heldOut, state.Stopping, state.Best?.ToArray());
        _scored = new double[ParameterLayout.For(spec.Model).Count];
    }

    /// <summary>The parameters after <paramref name="step"/> scored on the held-out sets (on every compute thread: the steps wait for it), which steps early stopping.</summary>
    private async Task<IEnumerable<EvalRecord>> EvaluateAsync(int step)
    {
        var (model, heldOut, scored, spec) = (_model!, _heldOut!, _scored, _spec!);
        await CopyParametersAsync(model, scored);
        var scores = await heldOut.ScoreAsync(step, scored, compute.MaximumConcurrencyLevel, compute.Run);
        int epoch = spec.Schedule().EpochOf(step);
        return scores.Select(s => new EvalRecord(step, epoch, s.Split, s.Result.Samples, s.Result.Loss, s.Accuracy));
    }

    /// <summary>The job's files on this silo (<see cref="SiloJobData"/>), opened for <paramref name="spec"/> once per initialisation; held until the next, or deactivation.</summary>
    private SiloJobData Files(TrainingSpec spec) => _files ??= SiloJobData.OpenFor(_siloData!, spec, files, silo.SiloAddress.Endpoint.ToString());

    /// <summary>
    /// The rows whose inputs a factored first layer's gradient is multiplied out with: the whole batch's;
    /// with mini-batches, every sample's, from which each step's batch is read. Data on the silos is read
    /// from this silo's files, held while the server is.
    /// </summary>
    private async Task<ISampleRows> InputsAsync(TrainingSpec spec)
    {
        if (_siloData is not null) return Files(spec).Rows(spec).Range(0, spec.ResolvedSamples);
        var uploaded = await UploadedAsync(spec);
        // NOTE: a dataset grain lost with its silo comes back empty; synthetic data instead would be silently wrong.
        if (uploaded is null && _uploadedData)
            throw new StateLostException($"The parameter server of job {JobId}: the job's uploaded data is gone (its silo was lost); the job must restore it.");
        return uploaded?.Range(0, spec.ResolvedSamples) ?? Synthetic.Data(spec.ResolvedSamples, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed);
    }

    /// <summary>
    /// The job's uploaded rows as this silo holds them (<see cref="SiloUploads"/>: every row, as it was uploaded, read
    /// in the precision asked for), held until the next initialisation or deactivation; null when the job uploaded none.
    /// </summary>
    private async Task<ISampleRows?> UploadedAsync(TrainingSpec spec)
    {
        if (await uploads.AcquireAsync(GrainFactory, JobId, spec, Offers.ReceiveAsync) is not { } held) return null;
        _uploads.Add(held);
        return held.Rows;
    }

    private static void Release(SiloJobData? files, List<SiloUploads.HeldRows> uploads)
    {
        files?.Dispose();
        foreach (var held in uploads) held.Dispose();
    }

    /// <summary>Hands back the rows this server holds (files, uploaded rows): it reads none until the next initialisation.</summary>
    private void ReleaseHeld()
    {
        Release(_files, _uploads);
        (_files, _uploads) = (null, []);
    }

    public async Task<StepBatch> RunStepsAsync(int firstStep, int maxSteps)
    {
        if (_spec is null || (_model is null && _split is null))
            throw new StateLostException($"The parameter server of job {JobId} was never initialised, or its silo was lost.");
        // A retried call for the batch just done gets the same answer instead of more updates.
        if (_lastBatch is { } last && last.FirstStep == firstStep) return last;
        _fatal?.Throw();
        if (firstStep != _stepsCompleted + 1)
            throw new StateLostException($"Job {JobId}: step {firstStep} requested but {_stepsCompleted} steps are done.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSteps);
        if (_split is not null)
        {
            _lastBatch = new StepBatch(firstStep, TensorPayload.From(await RunLinkedWindowAsync(firstStep, maxSteps)));
            return _lastBatch;
        }

        // NOTE: one call per step cost the seed job a job-grain round trip per step (~0.1 ms of ~1.3);
        // a batch runs until its window closes, so the job still hears of progress every few ms.
        // maxSteps may be the rest of the job (no checkpoint due), so the losses go to a list, not an array of that size.
        var losses = new List<double>(Math.Min(maxSteps, 1024));
        var evals = new List<EvalRecord>();
        try
        {
            await RunBatchAsync(firstStep, maxSteps, losses, evals);
        }
        catch (Exception e) when (Failures.Classify(e) == FailureKind.Fatal && losses.Count > 0)
        {
            // The steps before the bug stand: the job records their losses, then its next call fails with the bug.
            _fatal = ExceptionDispatchInfo.Capture(e);
        }
        _lastBatch = new StepBatch(firstStep, TensorPayload.From(CollectionsMarshal.AsSpan(losses)), evals.Count > 0 ? [.. evals] : null, _heldOut?.Stopping);
        return _lastBatch;
    }

    /// <summary>A data-parallel batch of steps from <paramref name="firstStep"/>: their losses and evaluations go into the lists as they complete.</summary>
    private async Task RunBatchAsync(int firstStep, int maxSteps, List<double> losses, List<EvalRecord> evals)
    {
        var clock = Stopwatch.StartNew();
        long until = Stopwatch.GetTimestamp() + (long)(_options.StepBatchWindow.TotalSeconds * Stopwatch.Frequency);
        // One attempt per batch to start a run over links: a worker that cannot link is not asked again every step.
        bool linking = _linksPlane && !_brokeRun;
        while (losses.Count < maxSteps && (losses.Count == 0 || clock.Elapsed < _options.StepBatchWindow))
        {
            int step = firstStep + losses.Count;
            // A step team may start at the job's first step (its workers compute at this server's parameters: they load
            // their rows as they join, and hold no cache); a run over links starts once the workers' caches are loaded.
            if (_run is null && linking && (!_workersLoad || TeamFromHere(_spec!)))
            {
                linking = false;
                await StartRunAsync(step);
            }
            double loss;
            if (_run is { } run)
            {
                var window = await run.RunAsync(step, maxSteps - losses.Count, until, EvaluatesAfter);
                losses.AddRange(window.Losses);
                _stepsCompleted += window.Losses.Length;
                // The workers have loaded (the team's seats), and the parameters stand after a step.
                if (window.Losses.Length > 0) (_workersLoad, _seeded) = (false, false);
                if (window.Failure is { } failure)
                {
                    EndRun();
                    (linking, _brokeRun) = (false, true);
                    if (Failures.Classify(failure) == FailureKind.Fatal) ExceptionDispatchInfo.Throw(failure);
                    logger.LogWarning("Job {Job}: the {Run} broke at step {Step} ({Error}); the next step goes through Orleans",
                        JobId, run is StepTeam ? "step team" : "run over links", _stepsCompleted + 1, failure.Message);
                    continue;
                }
                step = _stepsCompleted;
                loss = losses[^1];
            }
            else
            {
                loss = await RunStepAsync(step);
                losses.Add(loss);
                _brokeRun = false;
            }
            if (!double.IsFinite(loss)) break;
            if (EvaluatesAfter(step))
            {
                evals.AddRange(await EvaluateAsync(step));
                // Early stopping ends the job here: no step may follow.
                if (_heldOut.Stopped) break;
            }
        }
    }

    /// <summary>Where each worker's silo takes the links of a run from <paramref name="step"/> (by rank); from now on it takes them.</summary>
    private Task<string[]> LinkEndpointsAsync(int step) =>
        Task.WhenAll(Enumerable.Range(0, _spec!.Workers).Select(rank => Workers.CallAsync(rank, step, worker => worker.PrepareLinksAsync(), probe: false)));

    [System.Diagnostics.CodeAnalysis.MemberNotNullWhen(true, nameof(_heldOut))]
    private bool EvaluatesAfter(int step) => _heldOut is not null && _spec!.EvaluatesAfter(step);

    /// <summary>
    /// Starts a run over links: every worker links to this server (rank W of the run's endpoints) under a
    /// new generation, and the steps go over the links (<see cref="ServerRunner"/>) until the run breaks.
    /// A worker that cannot join (re-activated, unreachable) leaves the job on Orleans messages for now.
    /// </summary>
    private async Task StartRunAsync(int step)
    {
        var spec = _spec!;
        if (TeamFromHere(spec))
        {
            await StartTeamAsync(step);
            return;
        }
        int server = spec.Workers;
        var ranks = Enumerable.Range(0, server).ToArray();
        using var giveUp = new CancellationTokenSource();
        Task<IBlockLink?[]>? opening = null;
        try
        {
            var endpoints = await LinkEndpointsAsync(step);
            NextGeneration();
            var run = new ShardRun(spec, _generation, [.. endpoints, links.Prepare(JobId, server)], _factors, step);
            opening = links.OpenAsync(JobId, run.Generation, server, run.Endpoints, ranks, giveUp.Token);
            var starting = ranks.Select(rank => Worker(rank).StartShardRunAsync(run).WaitAsync(_options.SplitLinkTimeout)).ToArray();
            try
            {
                await Task.WhenAll(starting);
            }
            catch
            {
                // The others would wait for a worker that will not come: stop waiting, and close what it left.
                giveUp.Cancel();
                links.Release(JobId, server);
                throw;
            }
            var peers = await opening;
            _run = new ServerRunner(run.Generation, _model!, [.. peers.Take(server).Select(link => link!)], JobId);
        }
        catch (Exception e) when (Failures.Classify(e) != FailureKind.Fatal)
        {
            // The server's end may still open (or fail) after the workers' failed: close it, observe its failure.
            _ = opening?.ContinueWith(static t =>
            {
                if (t.IsCompletedSuccessfully) foreach (var link in t.Result) link?.Dispose();
                else _ = t.Exception;
            }, TaskScheduler.Default);
            logger.LogWarning("Job {Job}: the workers could not be linked for step {Step} ({Error}); the steps go through Orleans for now", JobId, step, Failures.Describe(e));
        }
    }

    private int ActiveSilos => membership.ActiveSilos().Length;

    /// <summary>
    /// Whether the job's steps may run as a <see cref="StepTeam"/> when every worker is on this silo: the server
    /// holds the parameters and no layer is factored (<see cref="ServerModel.SharesParameters"/>), links are not
    /// asked for by name, and there is a core for each worker's thread (the team's threads spin at their meetings).
    /// </summary>
    private bool TeamFits(TrainingSpec spec) =>
        _model is { SharesParameters: true } && _options.DataPlane != DataPlane.Links && spec.Workers <= compute.MaximumConcurrencyLevel;

    /// <summary>Whether the steps run as a step team now: it fits, and this silo is the cluster's only one (every worker is here).</summary>
    private bool TeamFromHere(TrainingSpec spec) => TeamFits(spec) && ActiveSilos == 1;

    /// <summary>
    /// Starts a run as a step team: every worker joins with its replica (all are on this silo, the only one), and
    /// the team's threads take the steps. A worker that cannot join (re-activated, or not here after all)
    /// leaves the job on Orleans messages for now.
    /// </summary>
    private async Task StartTeamAsync(int step)
    {
        var spec = _spec!;
        NextGeneration();
        var team = new StepTeam(_generation, _model!, spec.Workers, JobId, logger);
        teams.Open(JobId, team);
        try
        {
            var run = new ShardRun(spec, team.Generation, [], _factors, step, Team: true, _uploadedData, _siloData);
            // Workers that load their rows as they join take as long as a first step through Orleans may.
            var timeout = _workersLoad ? _options.WorkerCallTimeout : _options.SplitLinkTimeout;
            await Task.WhenAll(Enumerable.Range(0, spec.Workers).Select(rank => Worker(rank).StartShardRunAsync(run).WaitAsync(timeout)));
            team.Start();
            _run = team;
        }
        catch (Exception e) when (Failures.Classify(e) != FailureKind.Fatal)
        {
            team.Dispose();
            logger.LogWarning("Job {Job}: the workers could not form a step team for step {Step} ({Error}); the steps go through Orleans for now", JobId, step, Failures.Describe(e));
        }
        finally
        {
            teams.Close(JobId, team.Generation);
        }
    }

    /// <summary>Ends the run over links, if any: its links close, and the workers' runners end.</summary>
    private void EndRun()
    {
        _run?.Dispose();
        _run = null;
    }

    private async Task<double> RunStepAsync(int step)
    {
        var spec = _spec!;
        var model = _model!;
        // Workers that (re)load read the parameters themselves, which must then be whole; otherwise the update travels.
        if (_workersLoad) await _applying;
        bool parameters = _workersLoad && !_seeded || !_workersLoad && !model.CachesFollowUpdates;
        var request = new WorkRequest(spec, spec.Workers, step,
            parameters && !model.Sharded ? Offers.Send("sync", model.Parameters) : null,
            _uploadedData, _workersLoad || !model.CachesFollowUpdates ? null : Offers.Send("update", model.Update), _factors, Seeded: _workersLoad && _seeded, SiloData: _siloData,
            ParameterRanges: parameters && model.Sharded ? _shardParameters : null);
        var pending = new Task<ShardGradient>[spec.Workers];
        for (int rank = 0; rank < pending.Length; rank++) pending[rank] = Workers.ComputeAsync(rank, request);
        // The previous step's SGD update reaches the server's own parameters while the workers compute.
        if (!_workersLoad) _applying = compute.Run(model.ApplyPending);
        // Shards are added in rank order as they arrive: shard 0's pack is added while the others
        // still compute, so only the last shards' additions remain once every worker has answered.
        model.Begin(step);
        for (int rank = 0; rank < pending.Length; rank++)
        {
            var result = await pending[rank];
            if (result.NeedsParameters) result = await ResyncAsync(rank, request);
            await model.AddAsync(rank, result.Losses, await Offers.ReceiveAsync(result.Pack));
        }
        await _applying;
        double loss = await model.CompleteAsync(step);
        if (model.Sharded) await StepShardsAsync(step);
        _workersLoad = false;
        _seeded = false;
        _stepsCompleted = step;
        return loss;
    }

    /// <summary>
    /// A split job's steps: every worker runs the same window of steps, exchanging its activation
    /// blocks with the others directly, and answers its losses. The window's length in steps follows
    /// the measured step rate so a window lasts about <see cref="TrainerOptions.SplitStepBatchWindow"/>.
    /// A window that reaches the job grain's bound (a checkpoint or the job's end) brings the
    /// workers' shares back with it, so the checkpoint needs no further round trip. A worker that
    /// lost its share, or cannot be reached, fails the window (the others are told to stop waiting
    /// for its blocks), and the job restores its checkpoint: only that worker held its slice.
    /// </summary>
    private async Task<double[]> RunLinkedWindowAsync(int firstStep, int maxSteps)
    {
        var spec = _spec!;
        int steps = Math.Min(maxSteps, _linkedWindow);
        var clock = Stopwatch.StartNew();
        // A run that starts (model state) tells every worker where the others' silos take links.
        var endpoints = !_workersLoad ? null : await LinkEndpointsAsync(firstStep);
        var run = new LinkedRun(spec, _generation, firstStep, steps, _workersLoad ? Offers.SendOptional("sync", _splitState) : null, _uploadedData, endpoints,
            ShareAtEnd: steps == maxSteps, _factors, Seeded: _workersLoad && _splitState is null, SiloData: _siloData);
        var pending = Enumerable.Range(0, spec.Workers).Select(rank => Workers.CallAsync(rank, firstStep, worker => worker.RunWindowAsync(run))).ToList();
        var results = new LinkedRunResult?[spec.Workers];
        string? failure = null;
        Exception? error = null;
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
            (error, failure) = (e, failure ?? e.Message);
            await AbortAllAsync();
            // Let the others finish before the job restores.
            await QuietlyAsync(() => Task.WhenAll(pending).WaitAsync(_options.WorkerCallTimeout));
        }
        if (failure is not null)
        {
            // A worker's bug fails the job whatever the others saw after it (their links to it broke).
            var fatal = pending.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).Prepend(error)
                .FirstOrDefault(e => e is not null && Failures.Classify(e) == FailureKind.Fatal);
            if (fatal is not null) ExceptionDispatchInfo.Throw(fatal);
            int lost = Array.FindIndex(results, r => r is { NeedsParameters: true });
            if (lost >= 0) throw LostShare(lost);
            logger.LogWarning(error, "Job {Job}: the window from step {Step} failed: {Error}", JobId, firstStep, failure);
            throw new IOException($"Job {JobId}: the window from step {firstStep} failed: {failure}", error);
        }

        var losses = results[0]!.Losses.ToArray();
        foreach (var other in results.Skip(1)) CheckSameLosses(firstStep, losses, other!);
        Offers.Withdraw("sync");
        _splitState = null;
        _workersLoad = false;
        _seeded = false;
        _stepsCompleted = firstStep + losses.Length - 1;
        _checkpointShares = null;
        var shares = results.Select(r => r!.Share).ToArray();
        if (shares.All(share => share is not null))
        {
            try
            {
                // Read now: a share too large for one message is offered until read (GetStateAsync would ask again otherwise).
                var read = await Task.WhenAll(shares.Select(ReceiveAsync));
                _checkpointShares = (_stepsCompleted, [.. read.Select(share => share!)]);
            }
            catch (Exception e) when (Failures.Classify(e) != FailureKind.Fatal)
            {
                logger.LogWarning(e, "Job {Job}: the workers' shares after step {Step} could not be read ({Error}); a checkpoint asks again", JobId, _stepsCompleted, e.Message);
            }
        }
        // Aim the next window at the time target; grow at most 4x at a time (the first window of a run includes loading).
        double perStep = clock.Elapsed.TotalMilliseconds / losses.Length;
        _linkedWindow = (int)Math.Clamp(_options.SplitStepBatchWindow.TotalMilliseconds / Math.Max(perStep, 1e-3), 1, 4.0 * steps);
        return losses;
    }

    // NOTE: clock ticks order the generations of successive parameter-server activations too (a
    // restore takes seconds, far beyond the clock skew of one cluster's machines).
    private void NextGeneration() => _generation = Math.Max(_generation + 1, DateTime.UtcNow.Ticks);

    /// <summary>Every worker computed the same losses.</summary>
    private void CheckSameLosses(int firstStep, double[] losses, LinkedRunResult other)
    {
        var theirs = other.Losses.Values;
        int differs = theirs.Length != losses.Length ? Math.Min(theirs.Length, losses.Length) : theirs.IndexOfAnyExcept(losses);
        if (differs >= 0)
            throw new InvalidOperationException($"Job {JobId} step {firstStep + differs}: workers computed different losses " +
                $"({(differs < losses.Length ? losses[differs].ToString("R") : "none")} and worker {other.Rank}'s {(differs < theirs.Length ? theirs[differs].ToString("R") : "none")}); every silo must use the same GEMM backend (TRAINER_BLAS).");
    }

    private StateLostException LostShare(int rank) =>
        new($"Job {JobId}: worker {rank} lost its share of the parameters; no worker holds the parameters after step {_stepsCompleted} (its silo was lost).");

    private async Task QuietlyAsync(Func<Task> call)
    {
        try { await call(); }
        catch (Exception e) { logger.LogWarning(e, "Job {Job}: {Error} while ending a failed window", JobId, e.Message); }
    }

    public Task<ParameterTransfer> GetStateAsync() => StateAsync(handOver: false);

    public async Task<ParameterTransfer> TakeFinalStateAsync()
    {
        if (_spec is { } spec && _model is not null)
        {
            // The workers' replicas (rows, buffers, a team's packs) go before the state is put together.
            EndRun();
            _workersReleased = (await Task.WhenAll(Enumerable.Range(0, spec.Workers).Select(ReleaseWorkerAsync))).All(released => released);
        }

        async Task<bool> ReleaseWorkerAsync(int rank)
        {
            // The state does not depend on it: a worker that cannot be reached now is asked again with the server's release.
            try
            {
                await Worker(rank).ReleaseAsync();
                return true;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Job {Job}: worker {Rank} could not be released before the final state was read: {Error}", JobId, rank, e.Message);
                return false;
            }
        }
        var state = await StateAsync(handOver: true);
        // Its parameters may be the state's now: nothing steps them again (a later call finds no model, as after a lost silo).
        _model = null;
        return state;
    }

    private async Task<ParameterTransfer> StateAsync(bool handOver)
    {
        if (_spec is null || (_model is null && _split is null))
            throw new StateLostException($"The parameter server of job {JobId} holds no parameters (its silo was lost).");
        _fatal?.Throw();
        if (_workersLoad && _seeded) return new ParameterTransfer(_spec, 0, null, _uploadedData, SiloData: _siloData);
        if (_model is { Sharded: true } sharded)
        {
            // Every shard's buffers, chunk by chunk, straight into their places in the tensors that go out. The
            // placing runs on the compute threads: it widens into fresh model-sized memory, whose page faults
            // held the grain's turn for seconds. Each chunk is placed before the state goes out, and a shard
            // steps again only after that (its own buffers may be the chunks).
            var modelState = ServerModel.AllocateState(ParameterLayout.For(_spec.Model).Count, _spec.Optimizer.StateSlots);
            var placing = new System.Collections.Concurrent.ConcurrentQueue<Task>();
            await Task.WhenAll(sharded.Ranges.Select(async (_, k) =>
            {
                var state = await ParameterShard(k).GetStateAsync(_stepsCompleted);
                await Offers.ReceiveChunksAsync(state.Parameters, chunk => placing.Enqueue(compute.Run(() => sharded.PlaceState(ServerModel.Into(modelState), k, slots: false, chunk))));
                await Offers.ReceiveChunksAsync(state.Slots, chunk => placing.Enqueue(compute.Run(() => sharded.PlaceState(ServerModel.Into(modelState), k, slots: true, chunk))));
            }));
            await Task.WhenAll(placing);
            return State(modelState);
        }
        if (_model is { } model)
        {
            await _applying;
            return State(await compute.Run(() =>
            {
                model.ApplyPending();
                return model.ModelState(handOver);
            }));
        }
        var split = _split!;
        if (_splitState is { } loading) return State(split.ToFloat64(loading));
        if (_checkpointShares is { } kept && kept.StepsCompleted == _stepsCompleted) return State(split.ToFloat64(split.Merge(kept.Shares)));
        var shares = new TensorPayload[_spec.Workers];
        for (int rank = 0; rank < shares.Length; rank++)
            shares[rank] = await ReceiveAsync(await Worker(rank).GetShareAsync(_stepsCompleted).WaitAsync(_options.WorkerCallTimeout))
                ?? throw new StateLostException($"Job {JobId}: no worker holds the parameters after step {_stepsCompleted} (worker {rank}'s share was lost with its silo).");
        return State(split.ToFloat64(split.Merge(shares)));
    }

    // Offered until read once; two may be out at a time (a checkpoint and a client's fetch). Early
    // stopping's state and best parameters go with the model state: a checkpoint must restore them.
    private ParameterTransfer State(ModelState modelState) =>
        new(_spec!, _stepsCompleted, Offers.Send("state", modelState.Parameters, once: true, keep: 2), _uploadedData,
            _heldOut?.Stopping, Offers.SendOptional("best", _heldOut?.Best is { } best ? TensorPayload.From(best) : null, once: true, keep: 2), _siloData,
            Offers.SendSlots("state", modelState.Slots, once: true, keep: 2));

    /// <summary>
    /// Worker <paramref name="rank"/> answered that it holds no cache of the parameters (it was
    /// re-activated after a crash): it is sent the server's, the parameters after step - 1, and computes again.
    /// </summary>
    private async Task<ShardGradient> ResyncAsync(int rank, WorkRequest request)
    {
        // The previous step's update reached the parameters once the applying task is done (Parameters checks it).
        await _applying;
        logger.LogWarning("Job {Job} step {Step}: worker {Rank} holds no parameters; it is sent the parameter server's", JobId, request.Step, rank);
        var model = _model!;
        var result = await Workers.ComputeAsync(rank, request with
        {
            Parameters = model.Sharded ? null : Offers.Send("resync", model.Parameters),
            ParameterRanges = model.Sharded ? _shardParameters : null,
            Update = null, Seeded = false,
        });
        Offers.Withdraw("resync");
        return result.NeedsParameters
            ? throw new StateLostException($"Job {JobId} step {request.Step}: worker {rank} did not take the parameters it was sent (it was re-activated again).")
            : result;
    }

    public async Task ReleaseAsync()
    {
        EndRun();
        if (_spec is not null)
            await Task.WhenAll(Enumerable.Range(0, _workersReleased ? 0 : _spec.Workers).Select(rank => Worker(rank).ReleaseAsync())
                .Concat(Enumerable.Range(0, _spec.ResolvedParameterServerShards() is > 1 and var shards ? shards : 0).Select(k => ParameterShard(k).ReleaseAsync())));
        jobs.Forget(JobId);
        DeactivateOnIdle();
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
            // NOTE: SGD's pending update may still read held inputs; they are handed back (files unmapped) after it.
            try { await _applying; } catch (Exception e) { logger.LogDebug(e, "Job {Job}: the last update failed", JobId); }
            EndRun();
            if (_spec is not null) links.Release(JobId, _spec.Workers);
            ReleaseHeld();
        }
        finally
        {
            idle.Exit();
        }
    }

    private IWorkerGrain Worker(int rank) => Workers.Worker(rank);

    private WorkerCalls Workers => _workers ??= new(GrainFactory, JobId, _options, logger);
}
