using System.Numerics;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// One step's exchange run the way training runs it (<see cref="LocalTrainer"/>, the cluster):
/// every shard writes its pack (factors for factored layers, summed gradients for dense ones), the
/// <see cref="UpdateBuilder{T}"/> combines them in shard order, and a <see cref="ReplicaUpdate{T}"/>
/// turns the update into the full-batch gradient and the (SGD) step 1.
/// </summary>
internal static class Exchange
{
    /// <summary>A job of <paramref name="batch"/> samples over <paramref name="workers"/> shards.</summary>
    public static TrainingSpec Job(ModelSpec model, int batch, int workers, double learningRate = 0.05) =>
        new() { Model = model, Batch = batch, Workers = workers, LearningRate = learningRate };

    /// <summary>Each worker's blocks' summed losses and its pack, in rank order (<see cref="RankStep{T}"/>); x and y hold the whole batch.</summary>
    public static (double[][] Losses, T[][] Packs) ShardPacks<T>(TrainingSpec job, IGradientModel<T> model, ExchangePlan plan, T[] p, T[] x, T[] y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inputs = job.Model.InputSize, outputs = job.Model.OutputSize;
        var losses = new double[job.Workers][];
        var packs = new T[job.Workers][];
        for (int rank = 0; rank < job.Workers; rank++)
        {
            var worker = new RankStep<T>(plan, rank, job.Workers);
            var rows = worker.Layout.Rows;
            packs[rank] = new T[worker.Layout.Length];
            losses[rank] = new double[worker.Layout.Blocks.Count];
            worker.Compute(model, p, x.AsSpan(rows.Start * inputs, rows.Count * inputs), y.AsSpan(rows.Start * outputs, rows.Count * outputs), packs[rank], losses[rank]);
        }
        return (losses, packs);
    }

    /// <summary>The step's update pack and full-batch (scaled) loss, built from the shard packs in shard order.</summary>
    public static (double Loss, T[] Update) Update<T>(TrainingSpec job, ExchangePlan plan, double[][] losses, T[][] packs)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var builder = new UpdateBuilder<T>(job, plan);
        var update = new T[builder.UpdateLength];
        builder.Reset();
        for (int rank = 0; rank < packs.Length; rank++) builder.Add(rank, losses[rank], packs[rank], update);
        return (builder.Complete(), update);
    }

    /// <summary>The full-batch loss and gradient (loss scale applied), as a replica forms them; <paramref name="p"/> is left as it was.</summary>
    public static (double Loss, T[] Gradient) Gradient<T>(TrainingSpec job, IGradientModel<T> model, ExchangePlan plan, T[] p, T[] x, T[] y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (losses, packs) = ShardPacks(job, model, plan, p, x, y);
        var (loss, update) = Update(job, plan, losses, packs);
        var gradient = new T[plan.Layout.Count];
        new ReplicaUpdate<T>(job, plan, new ManagedBlas()).Gradient(update, x, gradient);
        return (loss, gradient);
    }

    /// <inheritdoc cref="Gradient{T}(TrainingSpec, IGradientModel{T}, ExchangePlan, T[], T[], T[])"/>
    public static (double Loss, T[] Gradient) Gradient<T>(ModelSpec spec, IGradientModel<T> model, ExchangePlan plan, T[] p, T[] x, T[] y, int workers)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Gradient(Job(spec, plan.Batch, workers), model, plan, p, x, y);

    /// <summary>The parameters after one SGD step through the exchange; <paramref name="p"/> is left as it was.</summary>
    public static T[] Step<T>(TrainingSpec job, IGradientModel<T> model, ExchangePlan plan, T[] p, T[] x, T[] y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (losses, packs) = ShardPacks(job, model, plan, p, x, y);
        var (_, update) = Update(job, plan, losses, packs);
        var next = (T[])p.Clone();
        new ReplicaUpdate<T>(job, plan, new ManagedBlas()).Apply(1, update, x, next, []);
        return next;
    }
}
