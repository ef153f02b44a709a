using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime;
using Orleans.Storage;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// Runs one job: refuses a bad submission before anything starts, then drives synchronous steps
/// through the parameter server in the background while answering status, loss and cancel
/// requests. Every <see cref="TrainingSpec.CheckpointEvery"/> steps, but at most once per
/// <see cref="TrainingSpec.CheckpointMinSeconds"/> of training, it checkpoints the parameters;
/// when a step fails for the infrastructure's sake (a lost parameter server, worker or its own silo,
/// a timeout, a broken link) it restores the latest checkpoint and replays. The reduction order is
/// fixed, so the replay gives the same bits. A failure no replay can fix (<see cref="Failures"/>)
/// fails the job at once. A batch that early stopping ends completes the job there, with the best
/// step's weights as its final ones.
/// Only this grain writes the job's record.
/// </summary>
[OldestSiloPlacement]
public sealed class TrainingJobGrain(
    ILogger<TrainingJobGrain> logger,
    IOptions<TrainerOptions> options,
    [PersistentState("job", StorageNames.Jobs)] IPersistentState<JobRecord> record,
    [PersistentState("data", StorageNames.Jobs)] IPersistentState<JobData> data,
    IOptions<SiloMessagingOptions> messaging,
    StagingQuota staging,
    StoredFiles files,
    ILocalSiloDetails silo,
    IClusterMembershipService membership,
    GemmKernels kernels,
    JobSilos jobs)
    : Grain, ITrainingJobGrain
{
    private readonly LossHistory _losses = new();
    // Evaluations of the parameters on the job's test set, in step order.
    private readonly List<EvalRecord> _evals = [];
    // The record, its chunks and the uploaded samples in storage.
    private JobStore _store = null!;
    // Whole-model tensors: offered to the parameter server and clients in chunks.
    private TensorOffers _offers = null!;
    // The latest checkpoint, whole (the record holds its tensors only when they fit one chunk), and the
    // final model state (parameters and the optimizer's state) until it is stored: a large one is kept
    // once, by storage (a 50M-parameter Adam job's is 1.2 GB).
    private ParameterState? _checkpoint;
    private ModelState? _final;
    // The final model state's parameters, as clients fetch them, read from storage alone when asked for.
    private TensorPayload? _finalParameters;
    // Initial parameters and samples being uploaded in chunks ahead of the submission that names them.
    private StagedUploads _uploads = null!;
    // The uploaded samples, whole (the stored state holds them only when they fit one chunk).
    private DatasetPayload? _data;
    private JobStatus? _status;
    private bool _cancelRequested;
    private bool _deactivating;
    // The latest checkpoint's storage write, which runs while the next steps do (see CheckpointAsync).
    private Task _checkpointWrite = Task.CompletedTask;
    private IGrainTimer? _keepAlive;

    private const int MaxLossesPerBatch = 1 << 20;

    private string JobId => this.GetPrimaryKeyString();

    private IParameterServerGrain ParameterServer => GrainFactory.GetGrain<IParameterServerGrain>(JobId);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var storage = ServiceProvider.GetRequiredKeyedService<IGrainStorage>(StorageNames.Jobs);
        _offers = TensorOffers.For(this, messaging.Value);
        _uploads = new StagedUploads(JobId, staging, options.Value.MaxUploadBytesPerJob);
        _store = new JobStore(record, data, storage, this.GetGrainId(), JobId, _offers.ChunkBytes, logger);
        _status = _store.Record.Status;
        _checkpoint = _store.Checkpoint;
        _final = _store.Final;
        await _store.ReadLossesAsync(_losses);
        _evals.AddRange(_store.Record.Evals);
        if (_status is { IsTerminal: false })
        {
            _data = await _store.ReadDataAsync();
            _checkpoint = await _store.ReadCheckpointAsync();
            // This activation replaces one lost with its silo: resume from the latest checkpoint.
            logger.LogWarning("Job {Job} resumes from its checkpoint at step {Step}", JobId, _store.Record.Checkpoint?.StepsCompleted);
            jobs.Remember(JobId, _status.Spec!.Gemm);
            Start(_status.Spec!, restoreFirst: true);
        }
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        // NOTE: the step loop must not outlive its activation: a later activation resumes from the
        // checkpoint, and a stale loop finishing (or failing) here would overwrite its record.
        _deactivating = true;
        // (null when the activation failed before it was made)
        _uploads?.Clear();
        return _checkpointWrite.WaitAsync(cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    public IAsyncEnumerable<TensorChunk> ReadOfferAsync(long offer, int maxChunkBytes, long from, long to) => _offers.ReadAsync(offer, maxChunkBytes, from, to);

    public Task StageAsync(UploadPart part, TensorChunk chunk)
    {
        JobIds.Check(JobId);
        RefuseIfExists();
        _uploads.Add(part, chunk);
        return Task.CompletedTask;
    }

    private void RefuseIfExists()
    {
        if (_status is not null)
            throw new JobRejectedException("job", JobId, $"job: '{JobId}' already exists (state {_status.State}); submit under a new id.");
    }

    public Task<SiloDataFacts> InspectDataAsync(SiloData data, Trainer.Core.Models.ModelSpec model)
    {
        using var opened = OpenSiloData(data, model);
        return Task.FromResult(opened.Facts);
    }

    /// <summary>A job's files on this silo, opened and checked; a refusal is the client's bad input.</summary>
    private SiloJobData OpenSiloData(SiloData data, Trainer.Core.Models.ModelSpec model)
    {
        try
        {
            return SiloJobData.Open(data, model, files, silo.SiloAddress.Endpoint.ToString());
        }
        catch (Trainer.Core.SpecException e)
        {
            throw new JobRejectedException(e.Field, e.Value, e.Message);
        }
    }

    public async Task<JobStatus> SubmitAsync(JobSubmission submission)
    {
        JobIds.Check(JobId);
        RefuseIfExists();
        try
        {
            if (submission.StagedInitialBytes != 0)
                submission = submission with { InitialParameters = _uploads.Take(UploadPart.InitialParameters, submission.StagedInitialBytes), StagedInitialBytes = 0 };
            if (submission is { StagedData: true, Data: { } sizes })
                submission = submission with
                {
                    Data = sizes with
                    {
                        X = _uploads.Take(UploadPart.Inputs, SubmissionChecks.InputBytes(sizes)),
                        Y = _uploads.Take(UploadPart.Targets, sizes.TargetBytes),
                    },
                    StagedData = false,
                };
        }
        finally
        {
            _uploads.Clear();
        }
        // The automatic shard count is decided once, by the cluster the job is submitted to, and kept with the job.
        var spec = SubmissionChecks.Check(submission).ForCluster(membership.ActiveSilos().Length);
        if (submission.SiloData is { } siloData)
        {
            // The client built the spec from the files' facts; they are checked again here (the verdict is
            // the silo's, kept per file), so a file changed since, or another on this silo, is refused now.
            using var opened = OpenSiloData(siloData, spec.Model);
            try
            {
                opened.RequireFits(spec);
            }
            catch (Trainer.Core.SpecException e)
            {
                throw new JobRejectedException(e.Field, e.Value, e.Message);
            }
        }
        var checksum = ResumeChecks.Checksum(submission);
        (ParameterState State, double[] Losses, double Seconds)? resumed = submission.ResumeFrom is { } from ? await ResumePointAsync(from, spec, checksum) : null;
        // The kernel every product of the job runs on, decided once here and kept with the job: a resumed job keeps
        // the one it resumes when every silo runs it, so it continues with the bits of one longer job.
        spec = spec with { Gemm = await kernels.ForJobAsync(resumed?.State.Spec.Gemm) };
        // This silo places the job's parameter server: on a silo that runs its kernel.
        jobs.Remember(JobId, spec.Gemm);
        // Uploaded initial parameters are stored; drawn ones are not (null: each worker draws them from the seed).
        var parameters = submission.InitialParameters;

        // Everything below changes the cluster, so it happens only after every check passed.
        int resumedAt = resumed?.State.StepsCompleted ?? 0;
        _losses.Add(resumed?.Losses ?? []);
        _status = new JobStatus(JobId, JobState.Running, spec, resumedAt, _losses.First, _losses.Last, null,
            DateTimeOffset.UtcNow, null, resumed?.Seconds ?? 0, submission.DataDescription, submission.InitDescription,
            CheckpointStep: resumedAt, ResumedFrom: submission.ResumeFrom, ResumedAtStep: resumedAt);
        try
        {
            if (submission.Data is { } samples)
            {
                _data = samples;
                await _store.WriteDataAsync(samples);
            }
            _store.Record.Status = _status;
            _checkpoint = resumed is { } start
                ? start.State with { Spec = spec, UploadedData = submission.Data is not null, SiloData = submission.SiloData }
                : new ParameterState(spec, 0, parameters, submission.Data is not null, SiloData: submission.SiloData);
            _store.Record.LossChunkSteps = options.Value.LossChunkSteps;
            _store.Record.DataChecksum = checksum;
            await WriteRecord();
            await GrainFactory.GetGrain<IJobRegistryGrain>(0).RegisterAsync(JobId);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Job {Job}: its record could not be written or registered; the job fails", JobId);
            await FinishAsync(JobState.Failed, $"could not start: {Failures.Describe(e)}", elapsed: 0);
            throw;
        }
        // The job is recorded: from here a lost silo or a timeout is replayed as in its steps (RunAsync), not the end of it.
        bool restored = false;
        try
        {
            await RestoreAsync();
            restored = true;
        }
        catch (Exception e) when (Failures.Classify(e) != FailureKind.Fatal)
        {
            logger.LogWarning(e, "Job {Job}: putting its start into the cluster failed ({Error}); the job retries it", JobId, e.Message);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Job {Job}: its start failed with an error no replay can fix; the job fails", JobId);
            await FinishAsync(JobState.Failed, $"could not start: {Failures.Describe(e)} (the silo log has the stack trace)", elapsed: 0);
            throw;
        }
        logger.LogInformation("Job {Job} started: {Model}, {Workers} workers, {Steps} steps, lr {Lr}, engine {Engine}, GEMM {Gemm}{Resumed}",
            JobId, spec.Model, spec.Workers, spec.Steps, spec.LearningRate, spec.Engine, spec.Gemm,
            resumed is null ? "" : $", resumed from job {submission.ResumeFrom} at step {resumedAt}");
        Start(spec, restoreFirst: !restored);
        return _status;
    }

    public Task<JobStatus> GetStatusAsync() => Task.FromResult(_status ?? JobStatus.NotFound(JobId));

    public async Task<LossBatch> GetLossesAsync(int fromStep, int maxCount, TimeSpan wait)
    {
        fromStep = Math.Max(1, fromStep);
        // One answer stays well under the message limit (8 MB of losses); a caller reads on from where it ends.
        maxCount = Math.Min(maxCount, MaxLossesPerBatch);
        if (_status is { IsTerminal: false }) await _losses.WaitBeyondAsync(fromStep, wait);
        var losses = _losses.Slice(fromStep, maxCount);
        // The evaluations after the steps whose losses go out, which a watcher shows beside them.
        int last = fromStep + losses.Length - 1;
        var evals = _evals.Count == 0 || losses.Length == 0 ? null : _evals.Where(e => e.Step >= fromStep && e.Step <= last).ToArray();
        return new LossBatch(fromStep, losses, _status ?? JobStatus.NotFound(JobId), evals is { Length: > 0 } ? evals : null);
    }

    public async Task<TensorTransfer> GetParametersAsync()
    {
        if (_status is null) throw new KeyNotFoundException(JobStatus.NotFound(JobId).Message);
        var spec = _status.Spec!;
        _finalParameters ??= _final?.Parameters ?? await _store.ReadFinalParametersAsync(ParameterLayout.For(spec.Model).Count);
        // Two may be out at a time (two clients); a running job's are read once, the final ones stay.
        if (_finalParameters is { } parameters) return _offers.Send("weights", parameters, keep: 2);
        return _offers.Send("weights", InitialParameters.Resolve(await StateAsync()), once: true, keep: 2);
    }

    public async Task<ResumePoint> GetResumePointAsync()
    {
        if (_status is not { IsTerminal: true } status) return new ResumePoint(_status ?? JobStatus.NotFound(JobId), null, null, null);
        if (await ResumeStateAsync(status) is not { } state) return new ResumePoint(status, null, null, _store.Record.DataChecksum);
        // Offered until read once; two at a time, for two jobs resuming this one at once.
        return new ResumePoint(status,
            new ParameterTransfer(state.Spec, state.StepsCompleted, _offers.SendOptional("resume", state.Parameters, once: true, keep: 2), state.UploadedData,
                Slots: _offers.SendSlots("resume", state.Slots, once: true, keep: 2)),
            _offers.Send("resume-losses", _losses.Slice(1, state.StepsCompleted), once: true, keep: 2),
            _store.Record.DataChecksum);
    }

    /// <summary>The final model state, after the status's steps, or the checkpoint the job kept because it ended without one (see FinishAsync).</summary>
    private async Task<ParameterState?> ResumeStateAsync(JobStatus status)
    {
        if (_store.Record.Checkpoint is not null)
            return _checkpoint = _checkpoint?.Parameters is null ? await _store.ReadCheckpointAsync() : _checkpoint;
        return (_final ?? await _store.ReadFinalAsync()) is { } final
            ? new ParameterState(status.Spec!, status.StepsCompleted, final.Parameters, _store.Record.DataChecksum is not null, Slots: final.Slots)
            : null;
    }

    /// <summary>
    /// Where the job <paramref name="from"/> that this submission resumes stands, checked against the
    /// submission (<see cref="ResumeChecks"/>): its model state and losses, read in chunks when large.
    /// </summary>
    private async Task<(ParameterState State, double[] Losses, double Seconds)> ResumePointAsync(string from, TrainingSpec spec, string? checksum)
    {
        // NOTE: asking itself would wait on its own turn forever.
        if (string.IsNullOrWhiteSpace(from) || from == JobId)
            throw new JobRejectedException(ResumeChecks.Field, from, $"{ResumeChecks.Field}: '{from}' cannot be resumed by job {JobId}; name another, finished job");
        var point = await GrainFactory.GetGrain<ITrainingJobGrain>(from).GetResumePointAsync();
        ResumeChecks.CheckJob(from, point);
        ResumeChecks.CheckSubmission(from, point, spec, checksum);
        var state = await _offers.ReceiveAsync(point.State!);
        ResumeChecks.CheckModelState(from, spec, state);
        var losses = (await _offers.ReceiveAsync(point.Losses!)).ToArray();
        if (losses.Length != state.StepsCompleted)
            throw new InvalidOperationException($"Job {from} sent {losses.Length} losses for {state.StepsCompleted} steps.");
        return (state, losses, point.Status.TrainingSeconds);
    }

    /// <summary>The parameter server's parameters after the steps done, read in chunks when large.</summary>
    private async Task<ParameterState> StateAsync() => await _offers.ReceiveAsync(await ParameterServer.GetStateAsync());

    public Task<JobStatus> CancelAsync()
    {
        if (_status is null) return Task.FromResult(JobStatus.NotFound(JobId));
        if (!_status.IsTerminal) _cancelRequested = true;
        return Task.FromResult(_status);
    }

    private void Start(TrainingSpec spec, bool restoreFirst)
    {
        _keepAlive ??= this.RegisterGrainTimer(() => Task.CompletedTask,
            new GrainTimerCreationOptions(TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1)) { KeepAlive = true });
        _ = RunAsync(spec, restoreFirst);
    }

    private async Task RunAsync(TrainingSpec spec, bool restoreFirst)
    {
        var clock = Stopwatch.StartNew();
        double before = _status!.TrainingSeconds;
        double Elapsed() => before + clock.Elapsed.TotalSeconds;
        int failures = 0, furthest = _losses.Count;
        var failingSince = DateTime.MaxValue;
        bool restore = restoreFirst;
        // Training time of the latest checkpoint (or start, or restore): the next one is due once
        // CheckpointMinSeconds more have passed, at the next multiple of CheckpointEvery steps.
        double checkpointedAt = Elapsed();
        while (true)
        {
            int step = _losses.Count + 1;
            // A batch of steps fails as a whole: the step that failed is one of them.
            string stage = $"the steps from {step}";
            if (_deactivating) return;
            try
            {
                if (_cancelRequested)
                {
                    await FinishAsync(JobState.Cancelled, $"cancelled after step {step - 1}", Elapsed());
                    return;
                }
                if (restore)
                {
                    stage = $"the restore of the checkpoint after step {_checkpoint?.StepsCompleted}";
                    await RestoreAsync();
                    restore = false;
                    step = _losses.Count + 1;
                    stage = $"the steps from {step}";
                    checkpointedAt = Elapsed();
                }
                if (step > spec.Steps) break;
                // A batch of steps; once a checkpoint is due, never past the next multiple of K. The
                // parameter server ends a batch after a window of time, so a due checkpoint comes
                // at most one window late.
                bool due = spec.CheckpointEvery > 0 && Elapsed() - checkpointedAt >= spec.CheckpointMinSeconds;
                int most = spec.Steps - step + 1;
                if (due) most = Math.Min(most, spec.CheckpointEvery - (step - 1) % spec.CheckpointEvery);
                var batch = await ParameterServer.RunStepsAsync(step, most);
                var losses = batch.Losses.Values;
                if (batch.FirstStep != step || losses.Length is 0 || losses.Length > most)
                    throw new InvalidOperationException($"The parameter server answered steps {batch.FirstStep}..{batch.FirstStep + losses.Length - 1} for a batch from step {step} of at most {most}.");
                int last = step + losses.Length - 1;
                double lastLoss = losses[^1];
                if (batch.Evals is { Length: > 0 } evals) _evals.AddRange(evals);
                _status = _status! with { StepsCompleted = last, FirstLoss = step == 1 ? losses[0] : _losses.First, LastLoss = lastLoss, TrainingSeconds = Elapsed(),
                    LastEval = TestEval(), Stopping = batch.Stopping ?? _status.Stopping };
                _losses.Add(losses);
                if (!double.IsFinite(lastLoss))
                {
                    await FinishAsync(JobState.Diverged, $"diverged at step {last}: the loss is {lastLoss}; lower --lr", Elapsed());
                    return;
                }
                if (batch.Stopping is { Stopped: true } stopped)
                {
                    await FinishAsync(JobState.Completed, $"stopped early after step {last}: {stopped.Patience} evaluations in a row did not lower the validation loss of step {stopped.BestStep}, whose weights the job keeps", Elapsed());
                    return;
                }
                if (last > furthest) (furthest, failures, failingSince) = (last, 0, DateTime.MaxValue);
                if (due && last % spec.CheckpointEvery == 0 && last < spec.Steps)
                {
                    stage = $"the checkpoint after step {last}";
                    await CheckpointAsync();
                    checkpointedAt = Elapsed();
                }
            }
            // Only the infrastructure's failures are replayed (Failures): a lost silo, a timeout, a broken link.
            catch (Exception e) when (Failures.Classify(e) != FailureKind.Fatal && DateTime.UtcNow - Min(failingSince, DateTime.UtcNow) < options.Value.RecoveryBudget)
            {
                failures++;
                if (failingSince == DateTime.MaxValue) failingSince = DateTime.UtcNow;
                logger.LogWarning(e, "Job {Job}: {Stage} failed ({Error}); restoring the checkpoint, attempt {Attempt}",
                    JobId, stage, e.Message, failures);
                await Task.Delay(TimeSpan.FromTicks(Math.Min(options.Value.RetryBackoff.Ticks * failures, options.Value.MaxRetryBackoff.Ticks)));
                restore = true;
            }
            catch (Exception e)
            {
                // NOTE: a loop whose activation is going away leaves the record to the next one (see OnDeactivateAsync).
                if (!_deactivating) await FailAsync(e, stage, failures, furthest, Elapsed());
                return;
            }
        }
        await FinishAsync(JobState.Completed, null, Elapsed());
    }

    /// <summary>
    /// Fails the job: at once for an error no replay can fix (a bug, bad data, out of memory), or
    /// after recoveries that got no further within the recovery budget. The whole exception goes to
    /// the log; its type and message to the job's status.
    /// </summary>
    private Task FailAsync(Exception e, string stage, int failures, int furthest, double elapsed)
    {
        if (Failures.Classify(e) == FailureKind.Fatal)
        {
            logger.LogError(e, "Job {Job}: {Stage} failed with an error no replay can fix; the job fails", JobId, stage);
            return FinishAsync(JobState.Failed,
                $"failed in {stage}: {Failures.Describe(e)} (not retried: a replay would fail the same way; the silo log has the stack trace)", elapsed);
        }
        logger.LogError(e, "Job {Job}: {Stage} failed; no recovery got past step {Furthest} within the recovery budget, the job fails", JobId, stage, furthest);
        return FinishAsync(JobState.Failed,
            $"failed in {stage}: {failures} recoveries within the recovery budget ({options.Value.RecoveryBudget.TotalSeconds:F0} s, Trainer:RecoveryBudget) "
            + $"got no further than step {furthest}; the last error: {Failures.Describe(e)}", elapsed);
    }

    /// <summary>Puts the latest checkpoint (and the uploaded data) back into the cluster and forgets later losses.</summary>
    private async Task RestoreAsync()
    {
        var checkpoint = _checkpoint ?? throw new InvalidOperationException($"Job {JobId} has no checkpoint to restore.");
        if (_data is { } uploaded)
        {
            try
            {
                // Large samples are offered while the call runs: the dataset grain reads them from here.
                await GrainFactory.GetGrain<IDatasetGrain>(JobId).StoreAsync(new DatasetTransfer(uploaded.Count, uploaded.InputSize, uploaded.OutputSize,
                    _offers.Send("inputs", uploaded.X), _offers.Send("targets", uploaded.Y), Storage: uploaded.Storage));
            }
            finally
            {
                _offers.Withdraw("inputs");
                _offers.Withdraw("targets");
            }
        }
        try
        {
            // Large parameters are offered while the call runs: the parameter server reads them from here.
            await ParameterServer.InitializeAsync(new ParameterTransfer(checkpoint.Spec, checkpoint.StepsCompleted,
                _offers.SendOptional("checkpoint", checkpoint.Parameters), checkpoint.UploadedData,
                checkpoint.Stopping, _offers.SendOptional("checkpoint-best", checkpoint.Best), checkpoint.SiloData, _offers.SendSlots("checkpoint", checkpoint.Slots)));
        }
        finally
        {
            _offers.Withdraw("checkpoint");
            _offers.Withdraw("checkpoint-best");
        }
        _losses.TruncateTo(checkpoint.StepsCompleted);
        // Replayed steps evaluate again, to the same bits.
        _evals.RemoveAll(e => e.Step > checkpoint.StepsCompleted);
        if (_status is { } status)
            _status = status with { StepsCompleted = Math.Min(status.StepsCompleted, checkpoint.StepsCompleted), CheckpointStep = checkpoint.StepsCompleted,
                LastEval = TestEval(), Stopping = checkpoint.Stopping };
    }

    /// <summary>
    /// Takes the parameters after the current step as the job's checkpoint and starts writing it.
    /// The write runs while the next steps do: it is needed only if this grain's silo dies, and then
    /// either it or the one before is in storage, and replaying from either gives the same bits.
    /// NOTE: measured on the seed job (embedded, memory storage, a checkpoint every 100 steps): a
    /// write takes 2.5 ms, 10 ms when it sets off a gen-2 collection (~7% of the job's time). That is
    /// CPU, so overlapping it gains little there; it does hide a durable store's round trips (Redis).
    /// Hence <see cref="TrainingSpec.CheckpointMinSeconds"/>: by default at most one a second.
    /// </summary>
    private async Task CheckpointAsync()
    {
        var state = await StateAsync();
        await TakeCheckpointWriteAsync();   // one write at a time (the last one finished long ago)
        _status = _status! with { CheckpointStep = state.StepsCompleted };
        _checkpoint = state;
        _store.Record.Status = _status;
        _checkpointWrite = WriteRecord();
    }

    private Task WriteRecord()
    {
        _store.Record.Evals = [.. _evals];
        return _store.WriteRecord(_losses, _checkpoint, _final);
    }

    /// <summary>Waits for the checkpoint write in flight; its failure surfaces here, once.</summary>
    private Task TakeCheckpointWriteAsync()
    {
        var write = _checkpointWrite;
        _checkpointWrite = Task.CompletedTask;
        return write;
    }

    /// <summary>Records the outcome, keeps the final model state, and frees the job's other grains.</summary>
    private async Task FinishAsync(JobState state, string? message, double elapsed)
    {
        // Nothing may change the record while a write of it is in flight.
        try
        {
            await TakeCheckpointWriteAsync();
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Job {Job}: the last checkpoint could not be written ({Error}); the final record replaces it", JobId, e.Message);
        }
        // The final model state, when it is the one after the recorded steps, is what a job resuming
        // this one starts from; otherwise the record keeps the latest checkpoint for that.
        bool resumable = false;
        try
        {
            var last = await _offers.ReceiveAsync(await ParameterServer.TakeFinalStateAsync());
            resumable = last.StepsCompleted == _losses.Count;
            // NOTE: early stopping's final weights are its best step's, not a state to continue from (ResumeChecks refuses to).
            _final = last.Best is { } bestWeights ? new ModelState(bestWeights)
                : resumable ? last.ModelState ?? new ModelState(InitialParameters.Float64(last.Spec))
                : new ModelState(InitialParameters.Resolve(last));
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Job {Job}: the final model state could not be read: {Error}", JobId, e.Message);
        }
        // The job's other grains go before the final status shows (a client that sees the job end, say an
        // embedded `trainer train` that then stops its silo, leaves nothing of it running), and before the
        // record is written: what they hold (with a sharded Adam job several times the model: caches,
        // shards' moments, the server's gradient) is then garbage while the final model state is copied
        // into storage, not held beside it.
        await QuietlyAsync(ParameterServer.ReleaseAsync);
        jobs.Forget(JobId);
        await QuietlyAsync(GrainFactory.GetGrain<IDatasetGrain>(JobId).ReleaseAsync);
        // Nor does this grain keep the uploaded samples (storage's copy goes below): only a replay reads
        // them, and an ended job replays nothing (a resumed job is a new job, sent its samples again). An
        // ended job's grain stays active for 30 minutes after its last call (TrainerSilo's collection age),
        // so a silo running one uploaded job after another held every one's samples: Fashion-MNIST's are 440 MB.
        _data = null;
        // The final status shows only once the record holding it is stored (or failed to store): a
        // client that sees the job end can read its whole record and history from storage. With
        // checkpoints at most once a second, a short job's final write carries every loss chunk.
        var final = _status! with { State = state, Message = message, CompletedAt = DateTimeOffset.UtcNow, TrainingSeconds = elapsed,
            LastEval = _status.Stopping is { BestStep: > 0 } best ? TestEval(best.BestStep) : _status.LastEval };
        _store.Record.Status = final;
        if (resumable) _checkpoint = null;
        try
        {
            await WriteRecord();
            // Kept once: storage holds a final model state too large for the record, and clients' reads go there.
            _final = _store.Final;
            await QuietlyAsync(() => GrainFactory.GetGrain<IJobRegistryGrain>(0).MarkFinishedAsync(JobId));
            if (_store.HasData) await QuietlyAsync(_store.ClearDataAsync);
        }
        finally
        {
            _status = final;
            _keepAlive?.Dispose();
            _keepAlive = null;
            _losses.Signal();
        }
        logger.LogInformation("Job {Job} {State} after {Steps} steps in {Seconds:F2} s; last loss {Loss}",
            JobId, state, _status.StepsCompleted, elapsed, _status.LastLoss);
    }

    /// <summary>The latest evaluation on the test set, or the one after <paramref name="step"/>; null if none.</summary>
    private EvalRecord? TestEval(int? step = null) =>
        _evals.LastOrDefault(e => e.Split == HeldOutEvaluation.TestSplit && (step is null || e.Step == step));

    private static DateTime Min(DateTime a, DateTime b) => a < b ? a : b;

    private async Task QuietlyAsync(Func<Task> release)
    {
        try { await release(); }
        catch (Exception e) { logger.LogWarning(e, "Job {Job}: cleanup step failed: {Error}", JobId, e.Message); }
    }
}
