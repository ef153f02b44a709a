using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Memory;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// A worker's rows and a cache of the parameters in precision T, and the arithmetic a data-parallel
/// worker runs on them: its shard of each step's batch, that shard's loss and pack, and (plain SGD)
/// the update's application, with the code the parameter server applies it with, so the cache keeps
/// the server's bits.
/// </summary>
/// <remarks>
/// <paramref name="rows"/> are the data's rows from <paramref name="firstRow"/> on: the shard's rows when
/// every step trains on all the data and the first layer is not factored, else the whole batch, both
/// copied here once in precision T; or, with mini-batches, all the data, wherever it is held (uploaded
/// arrays, or files mapped by the silo), from which each step's rows of this worker are read.
/// </remarks>
internal sealed class ReplicaState<T>(TrainingSpec spec, ExchangePlan plan, IGradientModel<T> model, int rank, ISampleRows rows, int firstRow)
    where T : unmanaged, IFloatingPointIeee754<T>
{
    // Without mini-batches every step trains on the same rows: held in precision T.
    private readonly (T[] X, T[] Y) _held = spec.MiniBatches ? ([], []) : rows.ToArrays<T>();
    // Bytes, so that parameters read from another silo can be written straight into the cache (ReceiveBuffer).
    // Made when first needed and let go by Forget: a worker in a step team computes at the server's parameters.
    private TensorPayload? _cache;
    private readonly BatchSchedule _schedule = spec.Schedule();
    private readonly int _inputs = spec.Model.InputSize, _outputs = spec.Model.OutputSize;
    private readonly PerBatchSize<Shape> _shapes = new(spec.Schedule(), size => new Shape(spec, plan.ForBatch(size), rank));
    // A mini-batch's rows of this worker and (a factored first layer) all its inputs, gathered for the step at hand.
    private T[] _shardX = [], _shardY = [];
    private readonly T[] _batchX = spec.MiniBatches && plan.NeedsBatchInputs ? new T[spec.Batch * spec.Model.InputSize] : [];

    public ExchangePlan Plan => plan;

    /// <summary>How many steps' updates the replica holds; -1 until it is given parameters.</summary>
    public int StepsApplied { get; private set; } = -1;

    private TensorPayload Cache => _cache ??= new(LargeArrays.New<byte>(plan.Layout.Count * Unsafe.SizeOf<T>()));

    private Span<T> Parameters => MemoryMarshal.Cast<byte, T>(Cache.Bytes.AsSpan());

    /// <summary>Replaces the replica with <paramref name="parameters"/> (the parameters after <paramref name="stepsCompleted"/> steps), which may have been received into <see cref="ReceiveBuffer"/>.</summary>
    public void Load(TensorPayload parameters, int stepsCompleted)
    {
        var values = parameters.ValuesOf<T>(plan.Layout.Count, "the parameters sent to the worker");
        if (parameters.Bytes != _cache?.Bytes) values.CopyTo(Parameters);
        foreach (var shape in _shapes.All) shape.Update.DiscardPrecomputed();
        StepsApplied = stepsCompleted;
    }

    /// <summary>
    /// The cache's own bytes, for parameters sent from another silo to be read straight into (no array of
    /// their own per step); the cache holds nothing usable until they are loaded (<see cref="Load"/>).
    /// </summary>
    public TensorPayload ReceiveBuffer(int bytes)
    {
        long expected = (long)plan.Layout.Count * Unsafe.SizeOf<T>();
        if (bytes != expected)
            throw new InvalidOperationException($"The parameters sent to the worker have {bytes} bytes, expected {plan.Layout.Count} {typeof(T).Name} values ({expected} bytes); do both ends agree on the job's precision?");
        StepsApplied = -1;
        return Cache;
    }

    /// <summary>The update's length for step StepsApplied + 1 (its batch's size decides it).</summary>
    public int UpdateLength => _shapes.For(StepsApplied + 1).Plan.Update.Length;

    /// <summary>Applies the update of step StepsApplied + 1 (plain SGD: any other optimizer's step needs its state, which the parameter server holds).</summary>
    public void Apply(ReadOnlySpan<T> update)
    {
        if (spec.Optimizer.StateSlots != 0)
            throw new InvalidOperationException($"Optimizer {spec.Optimizer.Name} keeps state on the parameter server; a worker's cache takes its parameters, not its updates.");
        int step = StepsApplied + 1;
        _shapes.For(step).Update.Apply(step, update, BatchInputs(step), Parameters, []);
        StepsApplied++;
    }

    /// <summary>
    /// Writes the pack of this worker's micro-shards of step StepsApplied + 1 at the replica's parameters
    /// into the step's pack buffer and returns its blocks' summed losses and the pack.
    /// </summary>
    public (double[] Losses, TensorPayload Pack) Compute() => Compute(StepsApplied + 1, Parameters);

    /// <summary>
    /// The same for step <paramref name="step"/> at <paramref name="parameters"/> (the parameters after step - 1,
    /// read in place: a <see cref="StepTeam"/>'s, the parameter server's own), leaving the cache alone.
    /// </summary>
    /// <remarks>
    /// One pack buffer serves every step here: a step team adds the packs up before any thread computes the
    /// next step's, so the buffer a message could still be reading (<see cref="PayloadRing{T}"/>) is never needed.
    /// </remarks>
    public (double[] Losses, TensorPayload Pack) ComputeAt(int step, TensorPayload parameters) =>
        Compute(step, parameters.ValuesOf<T>(plan.Layout.Count, "the parameters the worker computes at"), swap: false);

    private (double[] Losses, TensorPayload Pack) Compute(int step, ReadOnlySpan<T> parameters, bool swap = true)
    {
        var shape = _shapes.For(step);
        ShardRows(step, shape.Step.Layout.Rows, out var shardX, out var shardY);
        if (swap) shape.Packs.Swap();
        var losses = new double[shape.Step.Layout.Blocks.Count];
        shape.Step.Compute(model, parameters, shardX, shardY, shape.Packs.Current, losses);
        return (losses, shape.Packs.CurrentPayload);
    }

    /// <summary>
    /// Forgets the cache (it will be sent the parameters before its next step): a <see cref="StepTeam"/> computes at
    /// the server's instead. The cache and the update's buffers, each up to a model's size, are let go meanwhile.
    /// </summary>
    public void Forget()
    {
        foreach (var shape in _shapes.All) shape.Update.Release();
        _cache = null;
        StepsApplied = -1;
    }

    /// <summary>Computes this worker's share of step StepsApplied + 1's update from the pack just computed, ahead of the update (<see cref="ReplicaUpdate{T}.Precompute"/>).</summary>
    public void PrecomputeOwn()
    {
        int step = StepsApplied + 1;
        var shape = _shapes.For(step);
        ShardRows(step, shape.Step.Layout.Rows, out var shardX, out _);
        shape.Update.Precompute(rank, shape.Packs.Current, shardX);
    }

    /// <summary>This worker's rows of step <paramref name="step"/>'s batch: where they are held, or gathered (mini-batches).</summary>
    private void ShardRows(int step, Shard shard, out ReadOnlySpan<T> shardX, out ReadOnlySpan<T> shardY)
    {
        if (!spec.MiniBatches)
        {
            shardX = _held.X.AsSpan((shard.Start - firstRow) * _inputs, shard.Count * _inputs);
            shardY = _held.Y.AsSpan((shard.Start - firstRow) * _outputs, shard.Count * _outputs);
            return;
        }
        if (_shardX.Length == 0)
        {
            // The most rows this worker gets of any batch size, once.
            int most = _shapes.All.Max(s => s.Step.Layout.Rows.Count);
            (_shardX, _shardY) = (new T[most * _inputs], new T[most * _outputs]);
        }
        var gatheredX = _shardX.AsSpan(0, shard.Count * _inputs);
        var gatheredY = _shardY.AsSpan(0, shard.Count * _outputs);
        _schedule.Gather(step, rows, shard.Start, gatheredX, gatheredY);
        shardX = gatheredX;
        shardY = gatheredY;
    }

    /// <summary>Step <paramref name="step"/>'s whole batch's inputs, read when the first layer is factored (else empty).</summary>
    private ReadOnlySpan<T> BatchInputs(int step)
    {
        if (!plan.NeedsBatchInputs) return [];
        if (!spec.MiniBatches) return _held.X;
        var batchX = _batchX.AsSpan(0, _schedule.SizeOf(step) * _inputs);
        _schedule.Gather(step, rows, 0, batchX, Span<T>.Empty);
        return batchX;
    }

    /// <summary>What a step of one batch size works with: the plan, this worker's half of the step, the update's code, and the pack buffers.</summary>
    private sealed class Shape
    {
        public Shape(TrainingSpec spec, ExchangePlan plan, int rank)
        {
            Plan = plan;
            Step = new RankStep<T>(plan, rank, spec.Workers);
            Update = new ReplicaUpdate<T>(spec, plan);
            Packs = new PayloadRing<T>(Step.Layout.Length);
        }

        public ExchangePlan Plan { get; }
        public RankStep<T> Step { get; }
        public ReplicaUpdate<T> Update { get; }
        public PayloadRing<T> Packs { get; }
    }
}

/// <summary>
/// Makes a worker's <see cref="ReplicaState{T}"/> in the job's precision. A float32 job narrows uploaded
/// (float64) rows once, when the worker loads them; rows read from files are read in T as stored.
/// </summary>
internal static class ReplicaStates
{
    /// <param name="rows">The data's rows from <paramref name="firstRow"/> on that the worker holds (see <see cref="ReplicaState{T}"/>).</param>
    public static TReplica Create<TReplica>(TrainingSpec spec, ExchangePlan plan, int rank, ISampleRows rows, int firstRow,
        Func<ReplicaState<double>, TReplica> float64, Func<ReplicaState<float>, TReplica> float32) => spec.Precision switch
    {
        Precision.Float32 => float32(new(spec, plan, GradientModels.CreateSingle(spec), rank, spec.MiniBatches && rows is Dataset uploaded ? new Float32Rows(uploaded) : rows, firstRow)),
        _ => float64(new(spec, plan, GradientModels.Create(spec), rank, rows, firstRow)),
    };
}

/// <summary>
/// A data-parallel worker's rows and cache of the parameters (one step per request from the
/// parameter server), with its packs in reused buffers, so the worker grain stays precision-blind.
/// </summary>
internal abstract class ShardReplica
{
    /// <summary>How many steps' updates the replica holds; -1 until it is given parameters.</summary>
    public abstract int StepsApplied { get; }

    /// <summary>Replaces the replica with <paramref name="parameters"/> (the parameters after <paramref name="stepsCompleted"/> steps).</summary>
    public abstract void Load(TensorPayload parameters, int stepsCompleted);

    /// <summary>
    /// The cache's own bytes for <paramref name="bytes"/> bytes of parameters read from another silo straight into
    /// them; from then on the cache stands nowhere (<see cref="StepsApplied"/> -1) until they are loaded.
    /// </summary>
    public abstract TensorPayload ReceiveBuffer(int bytes);

    /// <summary>Applies the update of step StepsApplied + 1.</summary>
    public abstract void Apply(TensorPayload update);

    /// <summary>The worker's blocks' summed losses and its gradient pack for step StepsApplied + 1 at the replica's parameters.</summary>
    public abstract (double[] Losses, TensorPayload Pack) Compute();

    /// <summary>The worker's blocks' summed losses and its pack for step <paramref name="step"/> at <paramref name="parameters"/>, read in place; the cache is left alone.</summary>
    public abstract (double[] Losses, TensorPayload Pack) ComputeAt(int step, TensorPayload parameters);

    /// <summary>Forgets the cache: from now on it stands nowhere (<see cref="StepsApplied"/> -1) until it is sent parameters.</summary>
    public abstract void Forget();

    /// <summary>Whether the job's plan factors any layer (only then is there a share to <see cref="PrecomputeOwn"/>).</summary>
    public abstract bool HasFactors { get; }

    /// <summary>Computes this shard's share of the coming update from the last pack, ahead of the update's arrival.</summary>
    public abstract void PrecomputeOwn();

    /// <summary>
    /// Brings the cache to where step <paramref name="step"/> is computed (the parameters after step - 1):
    /// it loads <paramref name="parameters"/> when given, else applies <paramref name="update"/> (step - 1's)
    /// when it stands just before it. Answers whether it stands there now; anything else (no cache, or one
    /// from another point of the job) cannot be brought up to date from what the request carried.
    /// </summary>
    public bool CatchUp(int step, TensorPayload? parameters, TensorPayload? update)
    {
        if (parameters is not null) Load(parameters, step - 1);
        else if (update is not null && StepsApplied == step - 2) Apply(update);
        return StepsApplied == step - 1;
    }

    /// <param name="rows">The data's rows from <paramref name="firstRow"/> on that the worker holds (see <see cref="ReplicaState{T}"/>).</param>
    public static ShardReplica Create(TrainingSpec spec, ExchangePlan plan, int rank, ISampleRows rows, int firstRow) =>
        ReplicaStates.Create<ShardReplica>(spec, plan, rank, rows, firstRow, state => new Typed<double>(state), state => new Typed<float>(state));

    private sealed class Typed<T>(ReplicaState<T> state) : ShardReplica where T : unmanaged, IFloatingPointIeee754<T>
    {
        public override int StepsApplied => state.StepsApplied;

        public override void Load(TensorPayload parameters, int stepsCompleted) => state.Load(parameters, stepsCompleted);

        public override TensorPayload ReceiveBuffer(int bytes) => state.ReceiveBuffer(bytes);

        public override void Apply(TensorPayload update) => state.Apply(update.ValuesOf<T>(state.UpdateLength, "the step's update"));

        public override (double[] Losses, TensorPayload Pack) Compute() => state.Compute();

        public override (double[] Losses, TensorPayload Pack) ComputeAt(int step, TensorPayload parameters) => state.ComputeAt(step, parameters);

        public override void Forget() => state.Forget();

        public override bool HasFactors => state.Plan.AnyFactored;

        public override void PrecomputeOwn() => state.PrecomputeOwn();
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
    public static SplitReplica Create(TrainingSpec spec, int rank, ISampleRows batch) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(spec, rank, batch.ToArrays<float>()),
        _ => new Typed<double>(spec, rank, batch.ToArrays<double>()),
    };

    private sealed class Typed<T>(TrainingSpec spec, int rank, (T[] X, T[] Y) batch) : SplitReplica where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly FirstLayerSplit<T> _split = new(spec, rank, batch.X, batch.Y);
        private readonly int _parameters = ParameterLayout.For(spec.Model).Count;
        // The whole model's optimizer state when a model state arrives without one (step 0: zero).
        private T[]? _zeroState;

        public override int StepsApplied => _split.StepsApplied;

        public override int LastStep => spec.Steps;

        public override void Load(TensorPayload modelState, int stepsCompleted, Span<byte> block)
        {
            int slots = spec.Optimizer.StateSlots;
            var values = modelState.ValuesOf<T>(modelState.Bytes.Length == _parameters * Unsafe.SizeOf<T>() ? _parameters : (1 + slots) * _parameters, "the model state sent to the worker");
            var state = values.Length > _parameters ? values[_parameters..] : (_zeroState ??= LargeArrays.New<T>(slots * _parameters));
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
