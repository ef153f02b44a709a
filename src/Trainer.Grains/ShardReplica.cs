using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// A shard's rows and a cache of the parameters in precision T, and the arithmetic a data-parallel
/// worker runs on them: the shard's loss and pack, and (plain SGD) the update's application, with
/// the code the parameter server applies it with, so the cache keeps the server's bits.
/// </summary>
internal sealed class ReplicaState<T>(TrainingSpec spec, ExchangePlan plan, IGradientModel<T> model, T[] x, T[] y, int samples, T[] batchInputs)
    where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly T[] _parameters = new T[plan.Layout.Count];
    private readonly ReplicaUpdate<T> _update = new(spec, plan);

    public ExchangePlan Plan => plan;

    /// <summary>The layout of this shard's pack.</summary>
    public Pack Pack { get; } = plan.PackLayout(samples);

    /// <summary>How many steps' updates the replica holds; -1 until it is given parameters.</summary>
    public int StepsApplied { get; private set; } = -1;

    /// <summary>Replaces the replica with <paramref name="parameters"/> (the parameters after <paramref name="stepsCompleted"/> steps).</summary>
    public void Load(TensorPayload parameters, int stepsCompleted)
    {
        parameters.ValuesOf<T>(_parameters.Length, "the parameters sent to the worker").CopyTo(_parameters);
        _update.DiscardOwn();
        StepsApplied = stepsCompleted;
    }

    /// <summary>Applies the update of step StepsApplied + 1 (plain SGD: any other optimizer's step needs its state, which the parameter server holds).</summary>
    public void Apply(ReadOnlySpan<T> update)
    {
        if (spec.Optimizer.StateSlots != 0)
            throw new InvalidOperationException($"Optimizer {spec.Optimizer.Name} keeps state on the parameter server; a worker's cache takes its parameters, not its updates.");
        _update.Apply(StepsApplied + 1, update, batchInputs, _parameters, []);
        StepsApplied++;
    }

    /// <summary>Writes the shard's pack at the replica's parameters into <paramref name="pack"/>; returns the shard's summed loss.</summary>
    public double Compute(Span<T> pack) => GradientModels.LossAndPack(model, _parameters, x, y, samples, Pack, pack);

    /// <summary>Computes this shard's share of the coming update from its own pack, ahead of the update (<see cref="ReplicaUpdate{T}.PrecomputeOwn"/>).</summary>
    public void PrecomputeOwn(int rank, ReadOnlySpan<T> ownPack) => _update.PrecomputeOwn(rank, ownPack, x);

    /// <summary>A copy of the replica's parameters (job precision).</summary>
    public TensorPayload Snapshot()
    {
        var payload = TensorPayload.Allocate<T>(_parameters.Length, out var copy);
        _parameters.CopyTo(copy);
        return payload;
    }
}

/// <summary>Makes a worker's <see cref="ReplicaState{T}"/> in the job's precision: a float32 job narrows the rows once, when the worker loads them.</summary>
internal static class ReplicaStates
{
    /// <param name="batchInputs">The whole batch's inputs (float64), needed when the plan factors the first layer; else null.</param>
    public static TReplica Create<TReplica>(TrainingSpec spec, ExchangePlan plan, Dataset shard, double[]? batchInputs,
        Func<ReplicaState<double>, TReplica> float64, Func<ReplicaState<float>, TReplica> float32) => spec.Precision switch
    {
        Precision.Float32 => float32(new(spec, plan, GradientModels.CreateSingle(spec), Precisions.Narrow(shard.X), Precisions.Narrow(shard.Y), shard.Count,
            batchInputs is null ? [] : Precisions.Narrow(batchInputs))),
        _ => float64(new(spec, plan, GradientModels.Create(spec), shard.X, shard.Y, shard.Count, batchInputs ?? [])),
    };
}

/// <summary>
/// A data-parallel worker's shard and cache of the parameters (one step per request from the
/// parameter server), with its packs in two reused buffers, so the worker grain stays precision-blind.
/// </summary>
internal abstract class ShardReplica
{
    /// <summary>How many steps' updates the replica holds; -1 until it is given parameters.</summary>
    public abstract int StepsApplied { get; }

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
    public static ShardReplica Create(TrainingSpec spec, ExchangePlan plan, Dataset shard, double[]? batchInputs) =>
        ReplicaStates.Create<ShardReplica>(spec, plan, shard, batchInputs, state => new Typed<double>(state), state => new Typed<float>(state));

    private sealed class Typed<T>(ReplicaState<T> state) : ShardReplica where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly PayloadRing<T> _packs = new(state.Pack.Length);

        public override int StepsApplied => state.StepsApplied;

        public override void Load(TensorPayload parameters, int stepsCompleted) => state.Load(parameters, stepsCompleted);

        public override void Apply(TensorPayload update) => state.Apply(update.ValuesOf<T>(state.Plan.Update.Length, "the step's update"));

        public override (double Loss, TensorPayload Pack) Compute()
        {
            _packs.Swap();
            double loss = state.Compute(_packs.Current);
            return (loss, _packs.CurrentPayload);
        }

        public override bool HasFactors => state.Plan.AnyFactored;

        public override void PrecomputeOwn(int rank) => state.PrecomputeOwn(rank, _packs.Current);

        public override TensorPayload Snapshot() => state.Snapshot();
    }
}

/// <summary>
/// A worker's part of a job whose workers run windows of steps on their own, exchanging one block
/// each per step over links (<see cref="LinkRunner"/>), in the job's precision: a split job's
/// activation blocks (<see cref="SplitReplica"/>). It writes its blocks where the caller says: the
/// runner has them written straight into their place among the step's blocks.
/// </summary>
internal abstract class LinkedReplica
{
    /// <summary>How many steps the worker's parameters have taken; -1 until it is given parameters.</summary>
    public abstract int StepsApplied { get; }

    /// <summary>The job's last step (no block is needed after it).</summary>
    public abstract int LastStep { get; }

    /// <summary>Takes the model state <paramref name="modelState"/> (after <paramref name="stepsCompleted"/> steps) and writes this worker's block for the next step into <paramref name="block"/>.</summary>
    public abstract void Load(TensorPayload modelState, int stepsCompleted, Span<byte> block);

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

    /// <summary>A copy of what this worker owns: its slice's parameters, then their optimizer state.</summary>
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
        // The whole model's optimizer state when a model state arrives without one (step 0: zero).
        private T[]? _zeroState;

        public override int StepsApplied => _split.StepsApplied;

        public override int LastStep => spec.Steps;

        public override void Load(TensorPayload modelState, int stepsCompleted, Span<byte> block)
        {
            int slots = spec.Optimizer.StateSlots;
            var values = modelState.ValuesOf<T>(modelState.Bytes.Length == _parameters * Unsafe.SizeOf<T>() ? _parameters : (1 + slots) * _parameters, "the model state sent to the worker");
            var state = values.Length > _parameters ? values[_parameters..] : (_zeroState ??= new T[slots * _parameters]);
            _split.Load(values[.._parameters], state, stepsCompleted);
            _split.Activations(MemoryMarshal.Cast<byte, T>(block));
        }

        public override double Step(ReadOnlySpan<byte> blocks, Span<byte> next)
        {
            double loss = _split.Step(MemoryMarshal.Cast<byte, T>(blocks));
            if (!next.IsEmpty) _split.Activations(MemoryMarshal.Cast<byte, T>(next));
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
