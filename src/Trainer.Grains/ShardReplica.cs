using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// A worker's shard, its replica of the parameters and its buffers, in the job's precision, so the
/// worker grain stays precision-blind. A float32 job narrows the rows once, when the worker loads them.
/// </summary>
internal abstract class ShardReplica
{
    /// <summary>How many steps' updates the replica holds; -1 until it is given parameters.</summary>
    public int StepsApplied { get; protected set; } = -1;

    /// <summary>Replaces the replica with <paramref name="parameters"/> (the parameters after <paramref name="stepsCompleted"/> steps).</summary>
    public abstract void Load(TensorPayload parameters, int stepsCompleted);

    /// <summary>Applies the update of step StepsApplied + 1.</summary>
    public abstract void Apply(TensorPayload update);

    /// <summary>The shard's summed loss and gradient pack at the replica's parameters.</summary>
    public abstract (double Loss, TensorPayload Pack) Compute();

    /// <summary>Whether the job's plan factors any layer (only then is there a share to <see cref="PrecomputeOwn"/>).</summary>
    public abstract bool HasFactors { get; }

    /// <summary>Computes this shard's share of the coming update from the last pack, ahead of the update's arrival.</summary>
    public abstract void PrecomputeOwn(int rank);

    /// <summary>A copy of the replica's parameters (job precision).</summary>
    public abstract TensorPayload Snapshot();

    /// <param name="batchInputs">The whole batch's inputs (float64), needed when the plan factors the first layer; else null.</param>
    public static ShardReplica Create(TrainingSpec spec, ExchangePlan plan, Dataset shard, double[]? batchInputs) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(spec, plan, GradientModels.CreateSingle(spec), Precisions.Narrow(shard.X), Precisions.Narrow(shard.Y), shard.Count,
            batchInputs is null ? [] : Precisions.Narrow(batchInputs)),
        _ => new Typed<double>(spec, plan, GradientModels.Create(spec), shard.X, shard.Y, shard.Count, batchInputs ?? []),
    };

    private sealed class Typed<T> : ShardReplica where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ExchangePlan _plan;
        private readonly IGradientModel<T> _model;
        private readonly T[] _x, _y, _batchInputs, _parameters;
        private readonly int _samples;
        private readonly Pack _pack;
        private readonly PayloadRing<T> _packs;
        private readonly ReplicaUpdate<T> _update;

        public Typed(TrainingSpec spec, ExchangePlan plan, IGradientModel<T> model, T[] x, T[] y, int samples, T[] batchInputs)
        {
            (_plan, _model, _x, _y, _samples, _batchInputs) = (plan, model, x, y, samples, batchInputs);
            _parameters = new T[plan.Layout.Count];
            _pack = plan.PackLayout(samples);
            _packs = new PayloadRing<T>(_pack.Length);
            _update = new ReplicaUpdate<T>(spec, plan);
        }

        public override void Load(TensorPayload parameters, int stepsCompleted)
        {
            parameters.ValuesOf<T>(_parameters.Length, "the parameters sent to the worker").CopyTo(_parameters);
            _update.DiscardOwn();
            StepsApplied = stepsCompleted;
        }

        public override void Apply(TensorPayload update)
        {
            _update.Apply(update.ValuesOf<T>(_plan.Update.Length, "the step's update"), _batchInputs, _parameters);
            StepsApplied++;
        }

        public override (double Loss, TensorPayload Pack) Compute()
        {
            _packs.Swap();
            double loss = GradientModels.LossAndPack(_model, _parameters, _x, _y, _samples, _pack, _packs.Current);
            return (loss, _packs.CurrentPayload);
        }

        public override bool HasFactors => _plan.AnyFactored;

        public override void PrecomputeOwn(int rank) => _update.PrecomputeOwn(rank, _packs.Current, _x);

        public override TensorPayload Snapshot() => new(MemoryMarshal.AsBytes(_parameters.AsSpan()).ToArray());
    }
}

/// <summary>
/// A worker's part of a job that splits its first layer (<see cref="FirstLayerSplit{T}"/>), in the
/// job's precision. It writes its activation blocks where the caller says: the
/// <see cref="SplitRunner"/> has them written straight into their place among the step's blocks.
/// </summary>
internal abstract class SplitReplica
{
    /// <summary>How many steps the worker's share has taken; -1 until it is given parameters.</summary>
    public abstract int StepsApplied { get; }

    /// <summary>Takes this worker's share of <paramref name="parameters"/> (after <paramref name="stepsCompleted"/> steps) and writes its activation block for the next step into <paramref name="block"/>.</summary>
    public abstract void Load(TensorPayload parameters, int stepsCompleted, Span<byte> block);

    /// <summary>
    /// Runs a step from every worker's block (rank order, as bytes of the job's precision), writes this
    /// worker's block for the step after into <paramref name="next"/> and returns the step's loss.
    /// <paramref name="next"/> may be this worker's own place in <paramref name="blocks"/>: the step has read them all before it writes.
    /// </summary>
    public abstract double Step(ReadOnlySpan<byte> blocks, Span<byte> next);

    /// <summary>Where each rank's block sits in a step's blocks.</summary>
    public abstract BlockLayout Layout { get; }

    /// <summary>A copy of this worker's share of the parameters.</summary>
    public abstract TensorPayload Share();

    public static SplitReplica Create(TrainingSpec spec, int rank, Dataset batch) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(spec, rank, Precisions.Narrow(batch.X), Precisions.Narrow(batch.Y)),
        _ => new Typed<double>(spec, rank, batch.X, batch.Y),
    };

    private sealed class Typed<T>(TrainingSpec spec, int rank, T[] x, T[] y) : SplitReplica where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly FirstLayerSplit<T> _split = new(spec, rank, x, y);
        private readonly int _parameters = ParameterLayout.For(spec.Model).Count;

        public override int StepsApplied => _split.StepsApplied;

        public override void Load(TensorPayload parameters, int stepsCompleted, Span<byte> block)
        {
            _split.Load(parameters.ValuesOf<T>(_parameters, "the parameters sent to the worker"), stepsCompleted);
            _split.Activations(MemoryMarshal.Cast<byte, T>(block));
        }

        public override double Step(ReadOnlySpan<byte> blocks, Span<byte> next)
        {
            double loss = _split.Step(MemoryMarshal.Cast<byte, T>(blocks));
            _split.Activations(MemoryMarshal.Cast<byte, T>(next));
            return loss;
        }

        public override BlockLayout Layout { get; } = LayoutOf(spec);

        private static BlockLayout LayoutOf(TrainingSpec spec)
        {
            var units = FirstLayerSplit<T>.UnitSlices(spec);
            int size = Unsafe.SizeOf<T>() * spec.Batch;
            return new BlockLayout([.. units.Select(u => u.Start * size)], [.. units.Select(u => u.Count * size)], spec.Model.LayerSizes[1] * size);
        }

        public override TensorPayload Share()
        {
            var payload = TensorPayload.Allocate<T>(_split.ShareLength, out var share);
            _split.WriteShare(share);
            return payload;
        }
    }
}

/// <summary>Where each rank's block sits in a step's blocks (rank order), in bytes.</summary>
internal sealed record BlockLayout(int[] Offsets, int[] Lengths, int TotalBytes);
