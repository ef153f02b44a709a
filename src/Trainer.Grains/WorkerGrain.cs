using Microsoft.Extensions.Logging;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// Computes one shard's summed loss and gradient per step. The shard's rows are fetched (or, for
/// synthetic data, regenerated from the seed) once per activation and kept; only parameters
/// travel each step. A worker re-activated on another silo after a crash rebuilds itself from
/// the request alone, so its result is the same bits as before.
/// </summary>
[RankPlacement]
public sealed class WorkerGrain(ILogger<WorkerGrain> logger) : Grain, IWorkerGrain
{
    private ShardModel? _model;
    private TrainingSpec? _spec;

    private int Rank => (int)this.GetPrimaryKeyLong(out _);

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
        if (_model is null || _spec != request.Spec)
            await LoadAsync(request.Spec, request.WorldSize, request.UploadedData);
        var (loss, gradient) = _model!.Compute(request.Parameters);
        return new ShardGradient(Rank, request.Step, loss, gradient);
    }

    public Task ReleaseAsync()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    private async Task LoadAsync(TrainingSpec spec, int worldSize, bool uploadedData)
    {
        var shard = Shard.Split(spec.Batch, worldSize)[Rank];
        var uploaded = await GrainFactory.GetGrain<IDatasetGrain>(JobId).GetRowsAsync(shard.Start, shard.Count);
        // NOTE: a dataset grain lost with its silo comes back empty; training on synthetic data instead would be silently wrong.
        if (uploaded is null && uploadedData)
            throw new InvalidOperationException($"Worker {Rank} of job {JobId}: the job's uploaded data is gone (its silo was lost); the job must restore it.");
        var shardData = uploaded is null
            ? Synthetic.Data(spec.Batch, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed).Slice(shard)
            : new Dataset(uploaded.X.ToArray(), uploaded.Y.ToArray(), uploaded.Count, uploaded.InputSize, uploaded.OutputSize);
        _model = ShardModel.Create(spec, shardData);
        _spec = spec;
        logger.LogInformation("Worker {Rank}/{WorldSize} of job {Job} loaded samples [{Start}, {End}) ({Source}); engine {Engine}, {Precision}",
            Rank, worldSize, JobId, shard.Start, shard.End, uploaded is null ? "synthetic" : "uploaded", spec.Engine, spec.Precision.Name());
    }
}
