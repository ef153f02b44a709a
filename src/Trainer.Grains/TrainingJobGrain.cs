using Orleans.Runtime;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Trainer.Abstractions;
using Trainer.Core;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// Runs one job: validates the submission (refusing it before anything starts), initialises the
/// parameter server, then drives synchronous steps in the background while answering status,
/// loss and cancel requests. Only this grain writes the job's record to storage.
/// </summary>
public sealed class TrainingJobGrain(
    ILogger<TrainingJobGrain> logger,
    [PersistentState("job", StorageNames.Jobs)] IPersistentState<JobRecord> record)
    : Grain, ITrainingJobGrain
{
    private readonly List<double> _losses = [];
    private JobStatus? _status;
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _cancelRequested;
    private IGrainTimer? _keepAlive;

    private string JobId => this.GetPrimaryKeyString();

    private IParameterServerGrain ParameterServer => GrainFactory.GetGrain<IParameterServerGrain>(JobId);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _status = record.State.Status;
        _losses.AddRange(MemoryMarshal.Cast<byte, double>(record.State.Losses).ToArray());
        return Task.CompletedTask;
    }

    public async Task<JobStatus> SubmitAsync(JobSubmission submission)
    {
        if (_status is not null)
            throw new JobRejectedException("job", JobId, $"job: '{JobId}' already exists (state {_status.State}); submit under a new id.");
        var spec = Check(submission);
        var parameters = submission.InitialParameters
            ?? TensorPayload.From(Initializer.Create(ParameterLayout.For(spec.Model), spec.Init, spec.Seed));

        // Everything below changes the cluster, so it happens only after every check above passed.
        _status = new JobStatus(JobId, JobState.Running, spec, 0, double.NaN, double.NaN, null,
            DateTimeOffset.UtcNow, null, 0, submission.DataDescription, submission.InitDescription);
        try
        {
            if (submission.Data is { } data) await GrainFactory.GetGrain<IDatasetGrain>(JobId).StoreAsync(data);
            await ParameterServer.InitializeAsync(new ParameterState(spec, 0, parameters));
            await GrainFactory.GetGrain<IJobRegistryGrain>(0).RegisterAsync(JobId);
        }
        catch (Exception e)
        {
            await FinishAsync(JobState.Failed, $"could not start: {e.Message}", elapsed: 0);
            throw;
        }
        _keepAlive = this.RegisterGrainTimer(() => Task.CompletedTask,
            new GrainTimerCreationOptions(TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1)) { KeepAlive = true });
        logger.LogInformation("Job {Job} started: {Model}, {Workers} workers, {Steps} steps, lr {Lr}, engine {Engine}",
            JobId, spec.Model, spec.Workers, spec.Steps, spec.LearningRate, spec.Engine);
        _ = RunAsync(spec);
        return _status;
    }

    public Task<JobStatus> GetStatusAsync() => Task.FromResult(_status ?? JobStatus.NotFound(JobId));

    public async Task<LossBatch> GetLossesAsync(int fromStep, int maxCount, TimeSpan wait)
    {
        fromStep = Math.Max(1, fromStep);
        if (_status is { IsTerminal: false } && fromStep > _losses.Count && wait > TimeSpan.Zero)
            await Task.WhenAny(_progress.Task, Task.Delay(wait));
        int available = Math.Max(0, Math.Min(_losses.Count - (fromStep - 1), Math.Max(0, maxCount)));
        var losses = available == 0 ? TensorPayload.Empty
            : TensorPayload.From(CollectionsMarshal.AsSpan(_losses).Slice(fromStep - 1, available));
        return new LossBatch(fromStep, losses, _status ?? JobStatus.NotFound(JobId));
    }

    public async Task<TensorPayload> GetParametersAsync()
    {
        if (_status is null) throw new KeyNotFoundException(JobStatus.NotFound(JobId).Message);
        if (record.State.FinalParameters is { } final) return final;
        return (await ParameterServer.GetStateAsync()).Parameters;
    }

    public Task<JobStatus> CancelAsync()
    {
        if (_status is null) return Task.FromResult(JobStatus.NotFound(JobId));
        if (!_status.IsTerminal) _cancelRequested = true;
        return Task.FromResult(_status);
    }

    private async Task RunAsync(TrainingSpec spec)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            for (int step = _losses.Count + 1; step <= spec.Steps; step++)
            {
                if (_cancelRequested)
                {
                    await FinishAsync(JobState.Cancelled, $"cancelled after step {step - 1}", clock.Elapsed.TotalSeconds);
                    return;
                }
                var result = await ParameterServer.RunStepAsync(step);
                _losses.Add(result.Loss);
                _status = _status! with
                {
                    StepsCompleted = step,
                    FirstLoss = _losses[0],
                    LastLoss = result.Loss,
                    TrainingSeconds = clock.Elapsed.TotalSeconds,
                };
                if (!double.IsFinite(result.Loss))
                {
                    await FinishAsync(JobState.Diverged, $"diverged at step {step}: the loss is {result.Loss}; lower --lr", clock.Elapsed.TotalSeconds);
                    return;
                }
                Signal();
            }
            await FinishAsync(JobState.Completed, null, clock.Elapsed.TotalSeconds);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Job {Job} failed at step {Step}", JobId, _losses.Count + 1);
            await FinishAsync(JobState.Failed, $"failed at step {_losses.Count + 1}: {e.Message}", clock.Elapsed.TotalSeconds);
        }
    }

    /// <summary>Records the outcome, keeps the final parameters, and frees the job's other grains.</summary>
    private async Task FinishAsync(JobState state, string? message, double elapsed)
    {
        try
        {
            record.State.FinalParameters = (await ParameterServer.GetStateAsync()).Parameters;
        }
        catch (Exception e)
        {
            logger.LogWarning("Job {Job}: final parameters could not be read: {Error}", JobId, e.Message);
        }
        _status = _status! with { State = state, Message = message, CompletedAt = DateTimeOffset.UtcNow, TrainingSeconds = elapsed };
        record.State.Status = _status;
        record.State.Losses = MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(_losses)).ToArray();
        await record.WriteStateAsync();
        logger.LogInformation("Job {Job} {State} after {Steps} steps in {Seconds:F2} s; last loss {Loss}",
            JobId, state, _status.StepsCompleted, elapsed, _status.LastLoss);
        _keepAlive?.Dispose();
        _keepAlive = null;
        Signal();
        await ReleaseQuietlyAsync(ParameterServer.ReleaseAsync());
        await ReleaseQuietlyAsync(GrainFactory.GetGrain<IDatasetGrain>(JobId).ReleaseAsync());
    }

    private void Signal() => Interlocked.Exchange(ref _progress, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task ReleaseQuietlyAsync(Task release)
    {
        try { await release; }
        catch (Exception e) { logger.LogWarning("Job {Job}: releasing a grain failed: {Error}", JobId, e.Message); }
    }

    /// <summary>Every check a submission must pass before anything starts; the first failure names its field.</summary>
    private static TrainingSpec Check(JobSubmission submission)
    {
        try
        {
            var spec = submission.Spec.Validate();
            if (submission.Data is { } data)
            {
                if (data.InputSize != spec.Model.InputSize)
                    throw new SpecException("data", $"{data.InputSize} inputs per sample", $"the model {spec.Model.Architecture} takes {spec.Model.InputSize}");
                if (data.OutputSize != spec.Model.OutputSize)
                    throw new SpecException("data", $"{data.OutputSize} targets per sample", $"the model {spec.Model.Architecture} outputs {spec.Model.OutputSize}");
                if (data.Count != spec.Batch)
                    throw new SpecException("batch", spec.Batch, $"the uploaded data has {data.Count} samples and the batch must match it");
                if (data.X.Length != data.Count * data.InputSize || data.Y.Length != data.Count * data.OutputSize)
                    throw new SpecException("data", $"{data.X.Length} + {data.Y.Length} values", $"{data.Count} samples need {data.Count * data.InputSize} inputs and {data.Count * data.OutputSize} targets");
            }
            int expected = ParameterLayout.For(spec.Model).Count;
            if (submission.InitialParameters is { } init && init.Length != expected)
                throw new SpecException("init", $"{init.Length} parameters", $"the model {spec.Model.Architecture} has {expected}");
            return spec;
        }
        catch (SpecException e)
        {
            throw new JobRejectedException(e.Field, e.Value, e.Message);
        }
    }
}
