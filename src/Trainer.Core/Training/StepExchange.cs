using System.Numerics;
using System.Numerics.Tensors;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Optim;

namespace Trainer.Core.Training;

/// <summary>
/// The parameter server's half of a step: combines the shards' packs into the step's update pack,
/// in SHARD order (never arrival order). Dense slots are summed shard after shard; factors are
/// placed at their samples' rows, so the update's δ is the whole batch's δ. Shard losses (sums)
/// are added in shard order and the loss scale is applied once.
/// </summary>
/// <remarks>
/// The update is the same bits whichever machine builds it, and the parameter server and every
/// worker's cache turn it into the same parameters (<see cref="ReplicaUpdate{T}"/>), so they never drift apart.
/// </remarks>
public sealed class UpdateBuilder<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ExchangePlan _plan;
    private readonly Shard[] _shards;
    private readonly Pack[] _packs;
    private readonly double _scale;
    private double _loss;
    private int _next;

    public UpdateBuilder(TrainingSpec spec, ExchangePlan plan)
    {
        plan.CheckFits(spec);
        _plan = plan;
        _shards = Shard.Split(plan.Batch, spec.Workers);
        _packs = plan.ShardPacks(spec.Workers);
        _scale = spec.Model.Loss.Scale(plan.Batch, spec.Model.OutputSize);
    }

    /// <summary>Values in shard <paramref name="rank"/>'s pack.</summary>
    public int ShardLength(int rank) => _packs[rank].Length;

    /// <summary>Values in the update pack.</summary>
    public int UpdateLength => _plan.Update.Length;

    /// <summary>Starts a new step.</summary>
    public void Reset()
    {
        _next = 0;
        _loss = 0;
    }

    /// <summary>Adds shard <paramref name="rank"/>'s summed loss and pack into <paramref name="update"/>; shards must come in rank order.</summary>
    public void Add(int rank, double shardLoss, ReadOnlySpan<T> shardPack, Span<T> update)
    {
        AddPart(rank, shardPack, update, 0, 1);
        Accept(rank, shardLoss);
    }

    /// <summary>
    /// Adds part <paramref name="part"/> of <paramref name="parts"/> of shard <paramref name="rank"/>'s
    /// pack into <paramref name="update"/>: every slot's elements are cut into <paramref name="parts"/>
    /// equal ranges, so the parts touch disjoint elements and may run on different threads at once.
    /// Each element gets the same operation as in <see cref="Add"/>, so the bits do not depend on
    /// the cut. Once every part of the shard is in, <see cref="Accept"/> it.
    /// </summary>
    public void AddPart(int rank, ReadOnlySpan<T> shardPack, Span<T> update, int part, int parts)
    {
        if (rank < 0 || rank >= _shards.Length)
            throw new ArgumentOutOfRangeException(nameof(rank), $"Shard {rank} does not exist; there are {_shards.Length}.");
        if (rank != _next)
            throw new InvalidOperationException($"Shard {rank} was added out of order; shard {_next} is next. Reduce in shard order.");
        if (parts < 1 || part < 0 || part >= parts)
            throw new ArgumentOutOfRangeException(nameof(part), $"Part {part} of {parts} does not exist.");
        var pack = _packs[rank];
        if (shardPack.Length != pack.Length)
            throw new ArgumentException($"Shard {rank} sent {shardPack.Length} values; its pack for {pack.Samples} samples has {pack.Length}.");
        if (update.Length != UpdateLength)
            throw new ArgumentException($"The update buffer has {update.Length} values; the plan's update has {UpdateLength}.");
        int row = _shards[rank].Start;
        for (int l = 0; l < pack.Layers.Count; l++)
        {
            var from = pack.Layers[l];
            var to = _plan.Update.Layers[l];
            if (from.Factored)
            {
                int b = pack.Samples;
                Copy(shardPack.Slice(from.Delta, b * from.FanOut), update.Slice(to.Delta + row * to.FanOut, b * from.FanOut), part, parts);
                if (from.Input >= 0) Copy(shardPack.Slice(from.Input, b * from.FanIn), update.Slice(to.Input + row * to.FanIn, b * from.FanIn), part, parts);
                continue;
            }
            int length = from.FanIn * from.FanOut + (from.Bias >= 0 ? from.FanOut : 0);
            var (start, count) = Range(length, part, parts);
            var source = shardPack.Slice(from.Weights + start, count);
            var target = update.Slice(to.Weights + start, count);
            if (rank == 0) source.CopyTo(target);
            else TensorPrimitives.Add(target, source, target);
        }
    }

    /// <summary>Records shard <paramref name="rank"/>'s summed loss once all its parts are added; the next shard may then be added.</summary>
    public void Accept(int rank, double shardLoss)
    {
        if (rank != _next)
            throw new InvalidOperationException($"Shard {rank} was added out of order; shard {_next} is next. Reduce in shard order.");
        _loss += shardLoss;
        _next++;
    }

    private static void Copy(ReadOnlySpan<T> source, Span<T> target, int part, int parts)
    {
        var (start, count) = Range(source.Length, part, parts);
        source.Slice(start, count).CopyTo(target.Slice(start, count));
    }

    private static (int Start, int Count) Range(int length, int part, int parts)
    {
        int start = (int)((long)length * part / parts);
        return (start, (int)((long)length * (part + 1) / parts) - start);
    }

    /// <summary>Checks every shard was added and returns the full-batch loss (scaled once).</summary>
    public double Complete()
    {
        if (_next != _shards.Length)
            throw new InvalidOperationException($"Only {_next} of {_shards.Length} shards were added; a step needs every shard exactly once.");
        return _loss * _scale;
    }
}

/// <summary>
/// A replica's half of a step: turns the update pack into the full-batch gradient and applies the
/// loss scale once and then the optimizer. Dense slots are used as they are (already summed in
/// shard order); a factored layer's gradient is Σ_s δ_sᵀ·a_s, one GEMM per shard s, added in SHARD
/// order (exactly the arithmetic of the dense exchange: the factors only move the multiplication to
/// the receiver); its bias gradient is the row sum of δ over the whole batch, in sample order.
/// Workers, the single-process trainer and anyone rebuilding parameters run this same code, so
/// they agree to the bit.
/// </summary>
/// <remarks>
/// A worker may compute its own shard's products ahead of time (<see cref="PrecomputeOwn"/>), right
/// after sending its pack, while the other shards' factors are still on their way: the same
/// GEMM on the same values, so the same bits, off the step's critical path.
/// </remarks>
public sealed class ReplicaUpdate<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ExchangePlan _plan;
    private readonly Shard[] _shards;
    private readonly Pack[] _shardPacks;
    private readonly IBlas _blas;
    private readonly Optimizer<T> _optimizer;
    private readonly double _scale;
    private readonly T[] _gradient;
    // Per factored layer: one shard's product δ_sᵀ·a_s, and the precomputed own shard's product.
    private readonly T[]?[] _term, _own;
    private readonly T[] _biasTerm;
    private readonly ParameterView[] _weights;
    private readonly ParameterView?[] _biases;
    private int _ownRank = -1;

    public ReplicaUpdate(TrainingSpec spec, ExchangePlan plan, IBlas? blas = null)
    {
        if (typeof(T) != typeof(double) && typeof(T) != typeof(float))
            throw new NotSupportedException($"ReplicaUpdate<{typeof(T).Name}>: only double and float are supported.");
        plan.CheckFits(spec);
        _plan = plan;
        _shards = Shard.Split(plan.Batch, spec.Workers);
        _shardPacks = plan.ShardPacks(spec.Workers);
        _blas = blas ?? Blas.Default;
        _optimizer = Optimizer<T>.For(spec);
        _scale = spec.Model.Loss.Scale(plan.Batch, spec.Model.OutputSize);
        _gradient = new T[plan.Layout.Count];
        _term = [.. plan.Update.Layers.Select(l => l.Factored && _shards.Length > 1 ? new T[l.FanIn * l.FanOut] : null)];
        _own = new T[]?[plan.Update.Layers.Count];
        _biasTerm = new T[plan.Model.LayerSizes.Max()];
        // Looked up once: the views' lookups by name allocate, and Apply runs every step.
        _weights = [.. Enumerable.Range(1, plan.Model.LayerCount).Select(plan.Layout.Weight)];
        _biases = [.. Enumerable.Range(1, plan.Model.LayerCount).Select(plan.Layout.Bias)];
    }

    /// <summary>
    /// Computes shard <paramref name="rank"/>'s products from its own pack now, for the next
    /// <see cref="Apply"/> to use. <paramref name="shardInputs"/> is the shard's x (read when the first layer is factored).
    /// </summary>
    public void PrecomputeOwn(int rank, ReadOnlySpan<T> ownPack, ReadOnlySpan<T> shardInputs)
    {
        var shard = _shards[rank];
        var pack = _shardPacks[rank];
        if (ownPack.Length != pack.Length)
            throw new ArgumentException($"Shard {rank}'s pack has {ownPack.Length} values; {pack.Length} expected.", nameof(ownPack));
        for (int l = 0; l < pack.Layers.Count; l++)
        {
            var slots = pack.Layers[l];
            if (!slots.Factored) continue;
            var input = slots.Input >= 0 ? ownPack.Slice(slots.Input, shard.Count * slots.FanIn) : shardInputs;
            _own[l] ??= new T[slots.FanIn * slots.FanOut];
            Product(slots, ownPack.Slice(slots.Delta, shard.Count * slots.FanOut), input, shard.Count, _own[l]);
        }
        _ownRank = rank;
    }

    /// <summary>Forgets a precomputed own share (the replica was replaced, so it no longer applies).</summary>
    public void DiscardOwn() => _ownRank = -1;

    /// <summary>Optimizer-state values per parameter: <see cref="Apply"/>'s state holds this many times the parameter count.</summary>
    public int StateSlots => _optimizer.StateSlots;

    /// <summary>
    /// Step <paramref name="step"/> (1-based, the job's): parameters ← optimizer(parameters, gradient of
    /// <paramref name="update"/>, state). <paramref name="batchInputs"/> is the whole batch's x (Batch x inputs);
    /// it is read only when the first layer is factored. <paramref name="state"/> is the optimizer's memory over the
    /// whole flat parameters, <see cref="StateSlots"/> slots one after another (empty for SGD).
    /// </summary>
    public void Apply(int step, ReadOnlySpan<T> update, ReadOnlySpan<T> batchInputs, Span<T> parameters, Span<T> state)
    {
        Check(update, batchInputs);
        if (parameters.Length != _plan.Layout.Count)
            throw new ArgumentException($"parameters has {parameters.Length} values, the model has {_plan.Layout.Count}.", nameof(parameters));
        if (!_plan.AnyFactored && _scale == 1.0)
        {
            // A dense-only pack is laid out like the parameters and holds the summed gradient: step on it as it is.
            _optimizer.Step(step, parameters, update, state);
        }
        else
        {
            Build(update, batchInputs, _gradient, useOwn: true);
            _optimizer.Step(step, parameters, _gradient, state);
        }
        _ownRank = -1;
    }

    /// <summary>
    /// Writes the full-batch gradient (loss scale applied) that <paramref name="update"/> stands for
    /// into <paramref name="gradient"/>, without touching any parameters: what <see cref="Apply"/> steps on.
    /// </summary>
    public void Gradient(ReadOnlySpan<T> update, ReadOnlySpan<T> batchInputs, Span<T> gradient)
    {
        Check(update, batchInputs);
        if (gradient.Length != _plan.Layout.Count)
            throw new ArgumentException($"gradient has {gradient.Length} values, the model has {_plan.Layout.Count}.", nameof(gradient));
        Build(update, batchInputs, gradient, useOwn: false);
    }

    private void Check(ReadOnlySpan<T> update, ReadOnlySpan<T> batchInputs)
    {
        if (update.Length != _plan.Update.Length)
            throw new ArgumentException($"The update has {update.Length} values; the job's plan expects {_plan.Update.Length}.", nameof(update));
        if (_plan.NeedsBatchInputs && batchInputs.Length != _plan.Batch * _plan.Model.InputSize)
            throw new ArgumentException($"The batch inputs have {batchInputs.Length} values; {_plan.Batch} samples of {_plan.Model.InputSize} are needed.", nameof(batchInputs));
    }

    private void Build(ReadOnlySpan<T> update, ReadOnlySpan<T> batchInputs, Span<T> g, bool useOwn)
    {
        int batch = _plan.Batch;
        for (int l = 0; l < _plan.Model.LayerCount; l++)
        {
            var slots = _plan.Update.Layers[l];
            var weights = _weights[l].Of(g);
            var bias = _biases[l] is { } b ? b.Of(g) : default;
            if (!slots.Factored)
            {
                update.Slice(slots.Weights, weights.Length).CopyTo(weights);
                if (!bias.IsEmpty) update.Slice(slots.Bias, bias.Length).CopyTo(bias);
                continue;
            }
            var delta = update.Slice(slots.Delta, batch * slots.FanOut);
            var input = slots.Input >= 0 ? update.Slice(slots.Input, batch * slots.FanIn) : batchInputs;
            foreach (var shard in _shards)
            {
                // Shard 0 is written straight into the gradient; later shards go through a scratch term and are added.
                var shardDelta = delta.Slice(shard.Start * slots.FanOut, shard.Count * slots.FanOut);
                Span<T> term = shard.Rank == 0 ? weights : _term[l];
                if (useOwn && shard.Rank == _ownRank)
                {
                    if (shard.Rank == 0) _own[l]!.CopyTo(weights);
                    else TensorPrimitives.Add(weights, _own[l]!, weights);
                }
                else
                {
                    Product(slots, shardDelta, input.Slice(shard.Start * slots.FanIn, shard.Count * slots.FanIn), shard.Count, term);
                    if (shard.Rank > 0) TensorPrimitives.Add(weights, term, weights);
                }
                if (bias.IsEmpty) continue;
                Span<T> biasTerm = shard.Rank == 0 ? bias : _biasTerm;
                Mlp<T>.SumRows(shardDelta, shard.Count, slots.FanOut, biasTerm[..slots.FanOut]);
                if (shard.Rank > 0) TensorPrimitives.Add(bias, biasTerm[..slots.FanOut], bias);
            }
        }
        if (_scale != 1.0) TensorPrimitives.Multiply(g, T.CreateTruncating(_scale), g);
    }

    /// <summary>g_W = δᵀ · a   (fanOut, b) x (b, fanIn).</summary>
    private void Product(PackLayer slots, ReadOnlySpan<T> delta, ReadOnlySpan<T> input, int samples, Span<T> destination) =>
        _blas.Gemm(Transpose.Yes, Transpose.No, slots.FanOut, slots.FanIn, samples, delta, slots.FanOut, input, slots.FanIn, destination, slots.FanIn);
}
