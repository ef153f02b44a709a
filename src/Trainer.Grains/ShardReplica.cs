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
/// A worker's part of a job whose workers run windows of steps on their own, exchanging one block
/// each per step over links (<see cref="LinkRunner"/>), in the job's precision: a split job's
/// activation blocks (<see cref="SplitReplica"/>) or a data-parallel job's gradient packs
/// (<see cref="DataReplica"/>). It writes its blocks where the caller says: the runner has them
/// written straight into their place among the step's blocks.
/// </summary>
internal abstract class LinkedReplica
{
    /// <summary>How many steps the worker's parameters have taken; -1 until it is given parameters.</summary>
    public abstract int StepsApplied { get; }

    /// <summary>The job's last step (no block is needed after it).</summary>
    public abstract int LastStep { get; }

    /// <summary>Takes <paramref name="parameters"/> (after <paramref name="stepsCompleted"/> steps) and writes this worker's block for the next step into <paramref name="block"/>.</summary>
    public abstract void Load(TensorPayload parameters, int stepsCompleted, Span<byte> block);

    /// <summary>
    /// Runs a step from every worker's block (rank order, as bytes), writes this worker's block for
    /// the step after into <paramref name="next"/> (none when it is empty: the job's last step) and
    /// returns the step's loss. <paramref name="next"/> may be this worker's own place in
    /// <paramref name="blocks"/>: the step has read them all before it writes.
    /// </summary>
    public abstract double Step(ReadOnlySpan<byte> blocks, Span<byte> next);

    /// <summary>
    /// Work on this worker's own block (<paramref name="own"/>, just sent) that the next step would do
    /// anyway, done now while the other workers' blocks travel. The same arithmetic, so the same bits.
    /// </summary>
    public virtual void AfterSend(ReadOnlySpan<byte> own) { }

    /// <summary>Where each rank's block sits in a step's blocks.</summary>
    public abstract BlockLayout Layout { get; }

    /// <summary>Whether the parameter server needs this worker's <see cref="Share"/> at a checkpoint (a data-parallel job needs only one replica).</summary>
    public abstract bool SharesAtCheckpoint { get; }

    /// <summary>A copy of the parameters this worker holds: a split job's slice, a data-parallel job's whole replica.</summary>
    public abstract TensorPayload Share();
}

/// <summary>
/// A worker's part of a job that splits its first layer (<see cref="FirstLayerSplit{T}"/>): its
/// blocks are its units' activations for the whole batch.
/// </summary>
internal abstract class SplitReplica : LinkedReplica
{
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

        public override int LastStep => spec.Steps;

        public override void Load(TensorPayload parameters, int stepsCompleted, Span<byte> block)
        {
            _split.Load(parameters.ValuesOf<T>(_parameters, "the parameters sent to the worker"), stepsCompleted);
            _split.Activations(MemoryMarshal.Cast<byte, T>(block));
        }

        public override double Step(ReadOnlySpan<byte> blocks, Span<byte> next)
        {
            double loss = _split.Step(MemoryMarshal.Cast<byte, T>(blocks));
            if (!next.IsEmpty) _split.Activations(MemoryMarshal.Cast<byte, T>(next));
            return loss;
        }

        public override BlockLayout Layout { get; } = LayoutOf(spec);

        public override bool SharesAtCheckpoint => true;

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

/// <summary>
/// A worker's part of a data-parallel job whose workers exchange their gradient packs over links
/// instead of through the parameter server: each worker builds the step's update from every pack
/// in rank order and applies it to its own replica, with the very code the parameter server and
/// the replicas run on the other data plane (<see cref="UpdateBuilder{T}"/>, <see cref="ReplicaUpdate{T}"/>),
/// so the bits are the same on either. A block is the shard's summed loss (float64) and its pack
/// (job precision); the block for step s + 1 is computed right after step s's update.
/// </summary>
internal abstract class DataReplica : LinkedReplica
{
    /// <param name="batchInputs">The whole batch's inputs (float64), needed when the plan factors the first layer; else null.</param>
    public static DataReplica Create(TrainingSpec spec, ExchangePlan plan, int rank, Dataset shard, double[]? batchInputs) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(spec, plan, rank, GradientModels.CreateSingle(spec), Precisions.Narrow(shard.X), Precisions.Narrow(shard.Y), shard.Count,
            batchInputs is null ? [] : Precisions.Narrow(batchInputs)),
        _ => new Typed<double>(spec, plan, rank, GradientModels.Create(spec), shard.X, shard.Y, shard.Count, batchInputs ?? []),
    };

    private sealed class Typed<T> : DataReplica where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ExchangePlan _plan;
        private readonly int _rank, _samples;
        private readonly IGradientModel<T> _model;
        private readonly T[] _x, _y, _batchInputs, _parameters, _update;
        private readonly Pack[] _packs;
        private readonly UpdateBuilder<T> _builder;
        private readonly ReplicaUpdate<T> _replica;
        private int _stepsApplied = -1;

        public Typed(TrainingSpec spec, ExchangePlan plan, int rank, IGradientModel<T> model, T[] x, T[] y, int samples, T[] batchInputs)
        {
            (_plan, _rank, _model, _x, _y, _samples, _batchInputs, LastStep) = (plan, rank, model, x, y, samples, batchInputs, spec.Steps);
            _packs = plan.ShardPacks(spec.Workers);
            _builder = new UpdateBuilder<T>(spec, plan);
            _replica = new ReplicaUpdate<T>(spec, plan);
            _parameters = new T[plan.Layout.Count];
            _update = new T[_builder.UpdateLength];
            int size = Unsafe.SizeOf<T>();
            var lengths = _packs.Select(p => sizeof(double) + p.Length * size).ToArray();
            var offsets = new int[lengths.Length];
            for (int r = 1; r < offsets.Length; r++) offsets[r] = offsets[r - 1] + lengths[r - 1];
            Layout = new BlockLayout(offsets, lengths, offsets[^1] + lengths[^1]);
        }

        public override int StepsApplied => _stepsApplied;

        public override int LastStep { get; }

        public override BlockLayout Layout { get; }

        public override bool SharesAtCheckpoint => _rank == 0;

        public override void Load(TensorPayload parameters, int stepsCompleted, Span<byte> block)
        {
            parameters.ValuesOf<T>(_parameters.Length, "the parameters sent to the worker").CopyTo(_parameters);
            _replica.DiscardOwn();
            _stepsApplied = stepsCompleted;
            Compute(block);
        }

        public override double Step(ReadOnlySpan<byte> blocks, Span<byte> next)
        {
            _builder.Reset();
            for (int rank = 0; rank < _packs.Length; rank++)
            {
                var block = blocks.Slice(Layout.Offsets[rank], Layout.Lengths[rank]);
                _builder.Add(rank, MemoryMarshal.Read<double>(block), MemoryMarshal.Cast<byte, T>(block[sizeof(double)..]), _update);
            }
            double loss = _builder.Complete();
            _replica.Apply(_update, _batchInputs, _parameters);
            _stepsApplied++;
            if (!next.IsEmpty) Compute(next);
            return loss;
        }

        public override void AfterSend(ReadOnlySpan<byte> own)
        {
            if (_plan.AnyFactored) _replica.PrecomputeOwn(_rank, MemoryMarshal.Cast<byte, T>(own[sizeof(double)..]), _x);
        }

        /// <summary>This shard's summed loss and pack at the replica's parameters, as this worker's block.</summary>
        private void Compute(Span<byte> block)
        {
            double loss = GradientModels.LossAndPack(_model, _parameters, _x, _y, _samples, _packs[_rank], MemoryMarshal.Cast<byte, T>(block[sizeof(double)..]));
            MemoryMarshal.Write(block, in loss);
        }

        public override TensorPayload Share()
        {
            var payload = TensorPayload.Allocate<T>(_parameters.Length, out var copy);
            _parameters.CopyTo(copy);
            return payload;
        }
    }
}

/// <summary>Where each rank's block sits in a step's blocks (rank order), in bytes.</summary>
internal sealed record BlockLayout(int[] Offsets, int[] Lengths, int TotalBytes);
