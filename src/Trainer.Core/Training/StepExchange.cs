using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Memory;
using Trainer.Core.Models;
using Trainer.Core.Optim;

namespace Trainer.Core.Training;

/// <summary>
/// The parameter server's half of a step: combines the workers' packs into the step's update pack.
/// Each worker sends one pack per block (a node of the micro-shard tree, <see cref="MicroShards"/>),
/// in rank order (never arrival order); dense slots are summed up the fixed tree of micro-shards,
/// and factors are placed at their samples' rows, so the update's δ is the whole batch's δ. The
/// blocks' summed losses are reduced up the same tree and the loss scale is applied once.
/// </summary>
/// <remarks>
/// The update is the same bits whichever machine builds it and however many workers computed it,
/// and the parameter server and every worker's cache turn it into the same parameters
/// (<see cref="ReplicaUpdate{T}"/>), so they never drift apart.
/// </remarks>
public sealed class UpdateBuilder<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ExchangePlan _plan;
    private readonly RankPack[] _ranks;
    // Per rank, the global index of its first block; per block (global), the tree steps it triggers.
    private readonly int[] _firstBlock;
    private readonly ReduceStep[][] _stepsOf;
    private readonly PackSums<T> _sums;
    private readonly double[] _blockLosses, _lossSlots;
    private readonly double _scale;
    private int _next;

    public UpdateBuilder(TrainingSpec spec, ExchangePlan plan)
    {
        plan.CheckFits(spec);
        _plan = plan;
        _ranks = plan.RankPacks(spec.Workers);
        _firstBlock = new int[_ranks.Length];
        for (int r = 1; r < _ranks.Length; r++) _firstBlock[r] = _firstBlock[r - 1] + _ranks[r - 1].Blocks.Count;
        var blocks = _ranks.SelectMany(r => r.Blocks.Select(b => b.Node)).ToArray();
        var schedule = plan.Micro.Schedule(blocks);
        _stepsOf = [.. Enumerable.Range(0, blocks.Length).Select(i => schedule.Where(s => s.Input == i).ToArray())];
        _sums = new PackSums<T>(plan);
        int slots = MicroShards.SlotsOf(schedule);
        _sums.Reserve(slots);
        _lossSlots = new double[slots];
        _blockLosses = new double[blocks.Length];
        _scale = spec.Model.Loss.Scale(plan.Batch, spec.Model.OutputSize);
    }

    /// <summary>Values in worker <paramref name="rank"/>'s pack.</summary>
    public int ShardLength(int rank) => _ranks[rank].Length;

    /// <summary>Blocks (so summed losses) in worker <paramref name="rank"/>'s pack.</summary>
    public int BlockCount(int rank) => _ranks[rank].Blocks.Count;

    /// <summary>Values in the update pack.</summary>
    public int UpdateLength => _plan.Update.Length;

    /// <summary>Starts a new step.</summary>
    public void Reset() => _next = 0;

    /// <summary>Adds worker <paramref name="rank"/>'s blocks' summed losses and pack into <paramref name="update"/>; workers must come in rank order.</summary>
    public void Add(int rank, ReadOnlySpan<double> losses, ReadOnlySpan<T> shardPack, Span<T> update)
    {
        AddPart(rank, shardPack, update, 0, 1);
        Accept(rank, losses);
    }

    /// <summary>
    /// Adds part <paramref name="part"/> of <paramref name="parts"/> of worker <paramref name="rank"/>'s
    /// pack into <paramref name="update"/>: every slot's elements are cut into <paramref name="parts"/>
    /// equal ranges, so the parts touch disjoint elements and may run on different threads at once.
    /// Each element gets the same operations as in <see cref="Add"/>, so the bits do not depend on
    /// the cut. Once every part of the pack is in, <see cref="Accept"/> it.
    /// </summary>
    public void AddPart(int rank, ReadOnlySpan<T> shardPack, Span<T> update, int part, int parts)
    {
        if (rank < 0 || rank >= _ranks.Length)
            throw new ArgumentOutOfRangeException(nameof(rank), $"Shard {rank} does not exist; there are {_ranks.Length}.");
        if (rank != _next)
            throw new InvalidOperationException($"Shard {rank} was added out of order; shard {_next} is next. Reduce in shard order.");
        AddPartOf(rank, shardPack, update, part, parts);
    }

    /// <summary>A worker's pack, by rank (<see cref="AddRangeOfEach"/>).</summary>
    public delegate ReadOnlySpan<T> PackOf(int rank);

    /// <summary>
    /// Adds the elements [<paramref name="start"/>, + <paramref name="count"/>) of every worker's pack, in rank order,
    /// into <paramref name="update"/>: for those elements, exactly what <see cref="AddPart"/> does rank after rank, so
    /// several threads may each add other ranges at once, and step a range as soon as it is added. Only a plan
    /// without factors, whose packs are laid out as the update.
    /// </summary>
    public void AddRangeOfEach(PackOf packs, Span<T> update, int start, int count)
    {
        if (_plan.AnyFactored)
            throw new InvalidOperationException("A plan with factors places each worker's rows; add its packs whole or by parts (Add, AddPart).");
        CheckUpdate(update);
        if (start < 0 || count < 0 || start + count > UpdateLength)
            throw new ArgumentOutOfRangeException(nameof(start), $"Elements [{start}, {start + count}) are not all in the update's {UpdateLength}.");
        for (int rank = 0; rank < _ranks.Length; rank++)
        {
            var layout = _ranks[rank];
            var pack = packs(rank);
            CheckPack(rank, pack);
            for (int j = 0; j < layout.Blocks.Count; j++)
            {
                var values = pack.Slice(layout.Blocks[j].Offset, layout.Blocks[j].Layout.Length);
                foreach (var step in _stepsOf[_firstBlock[rank] + j]) _sums.RunRange(step, values, update, start, count);
            }
        }
    }

    private void AddPartOf(int rank, ReadOnlySpan<T> shardPack, Span<T> update, int part, int parts)
    {
        if (parts < 1 || part < 0 || part >= parts)
            throw new ArgumentOutOfRangeException(nameof(part), $"Part {part} of {parts} does not exist.");
        var layout = _ranks[rank];
        CheckPack(rank, shardPack);
        CheckUpdate(update);
        for (int j = 0; j < layout.Blocks.Count; j++)
        {
            var block = layout.Blocks[j];
            var values = shardPack.Slice(block.Offset, block.Layout.Length);
            PackSums<T>.PlaceFactors(values, block.Layout, update, _plan.Update, block.Rows.Start, part, parts);
            foreach (var step in _stepsOf[_firstBlock[rank] + j]) _sums.Run(step, values, block.Layout, update, _plan.Update, part, parts);
        }
    }

    private void CheckPack(int rank, ReadOnlySpan<T> pack)
    {
        var layout = _ranks[rank];
        if (pack.Length != layout.Length)
            throw new ArgumentException($"Shard {rank} sent {pack.Length} values; its pack for {layout.Rows.Count} samples has {layout.Length}.");
    }

    private void CheckUpdate(Span<T> update)
    {
        if (update.Length != UpdateLength)
            throw new ArgumentException($"The update buffer has {update.Length} values; the plan's update has {UpdateLength}.");
    }

    /// <summary>Records worker <paramref name="rank"/>'s blocks' summed losses once all its parts are added; the next worker may then be added.</summary>
    public void Accept(int rank, ReadOnlySpan<double> losses)
    {
        if (rank != _next)
            throw new InvalidOperationException($"Shard {rank} was added out of order; shard {_next} is next. Reduce in shard order.");
        if (losses.Length != _ranks[rank].Blocks.Count)
            throw new ArgumentException($"Shard {rank} sent {losses.Length} losses; its pack has {_ranks[rank].Blocks.Count} blocks.", nameof(losses));
        int first = _firstBlock[rank];
        losses.CopyTo(_blockLosses.AsSpan(first));
        for (int j = 0; j < losses.Length; j++) MicroShards.Reduce(_stepsOf[first + j], _blockLosses, _lossSlots);
        _next++;
    }

    /// <summary>Checks every worker was added and returns the full-batch loss (scaled once).</summary>
    public double Complete()
    {
        if (_next != _ranks.Length)
            throw new InvalidOperationException($"Only {_next} of {_ranks.Length} shards were added; a step needs every shard exactly once.");
        return _lossSlots[0] * _scale;
    }
}

/// <summary>
/// A replica's half of a step: turns the update pack into the full-batch gradient and applies the
/// loss scale once and then the optimizer. Dense slots are used as they are (already summed up the
/// micro-shard tree); a factored layer's gradient is Σ_m δ_mᵀ·a_m, one GEMM per micro-shard m,
/// summed up the same tree (exactly the arithmetic of the dense exchange: the factors only move the
/// multiplication to the receiver); its bias gradient is each micro-shard's row sum of δ, in sample
/// order, summed up the tree. Workers, the single-process trainer and anyone rebuilding parameters
/// run this same code, so they agree to the bit, for any worker count.
/// </summary>
/// <remarks>
/// A worker may compute its own blocks' products ahead of time (<see cref="Precompute"/>), right
/// after sending its pack, while the other workers' factors are still on their way: the same
/// GEMMs on the same values, so the same bits, off the step's critical path.
/// </remarks>
public sealed class ReplicaUpdate<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ExchangePlan _plan;
    private readonly RankPack[] _ranks;
    private readonly BlockPack[] _blocks;
    private readonly int[] _firstBlock;
    // The tree steps over all blocks (grouped by block), and over each block's micro-shards.
    private readonly ReduceStep[][] _stepsOf;
    private readonly ReduceStep[][] _leafSteps;
    private readonly IBlas _blas;
    private readonly Optimizer<T> _optimizer;
    private readonly double _scale;
    // Apply's full-batch gradient, made on its first call: a replica that is sent parameters, or
    // writes the gradient into a buffer of its own (Gradient), never needs one (a whole model each).
    private T[]? _gradient;
    // Scratch partial sums of a factored layer's weights and bias, by slot (slot 0 is the gradient itself);
    // a micro-shard's bias term alone, by slot (Leaf).
    private readonly List<T[]> _scratch = [];
    private readonly List<T[]> _biasScratch = [];
    // A block of rows of a micro-shard's product, formed before it is added (Leaf): an eighth of a layer, not all of it.
    private T[] _term = [];
    private readonly int _valueLength;
    // Per factored layer and own block: the precomputed product, weights then bias.
    private readonly T[]?[][] _own;
    private readonly ParameterView[] _weights;
    private readonly ParameterView?[] _biases;
    // Per block: whether its products are precomputed (Precompute) for the coming Apply or Gradient.
    private readonly bool[] _precomputed;

    public ReplicaUpdate(TrainingSpec spec, ExchangePlan plan, IBlas? blas = null)
    {
        if (typeof(T) != typeof(double) && typeof(T) != typeof(float))
            throw new NotSupportedException($"ReplicaUpdate<{typeof(T).Name}>: only double and float are supported.");
        plan.CheckFits(spec);
        _plan = plan;
        _ranks = plan.RankPacks(spec.Workers);
        _blocks = [.. _ranks.SelectMany(r => r.Blocks)];
        _firstBlock = new int[_ranks.Length];
        for (int r = 1; r < _ranks.Length; r++) _firstBlock[r] = _firstBlock[r - 1] + _ranks[r - 1].Blocks.Count;
        var schedule = plan.Micro.Schedule([.. _blocks.Select(b => b.Node)]);
        _stepsOf = [.. Enumerable.Range(0, _blocks.Length).Select(i => schedule.Where(s => s.Input == i).ToArray())];
        _leafSteps = [.. _blocks.Select(b => plan.Micro.Schedule(plan.Micro.LeavesOf(b.Node)))];
        _blas = blas ?? Blas.For(spec.Gemm);
        _optimizer = Optimizer<T>.For(spec);
        _scale = spec.Model.Loss.Scale(plan.Batch, spec.Model.OutputSize);
        _valueLength = plan.Update.Layers.Where(l => l.Factored).Select(l => l.FanOut * (l.FanIn + 1)).DefaultIfEmpty(0).Max();
        _own = [.. plan.Update.Layers.Select(_ => new T[]?[_blocks.Length])];
        // Looked up once: the views' lookups by name allocate, and Apply runs every step.
        _weights = [.. Enumerable.Range(1, plan.Model.LayerCount).Select(plan.Layout.Weight)];
        _biases = [.. Enumerable.Range(1, plan.Model.LayerCount).Select(plan.Layout.Bias)];
        _precomputed = new bool[_blocks.Length];
        PrecomputedBytes = (long)_blocks.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>() *
            plan.Update.Layers.Where(l => l.Factored).Sum(l => (long)l.FanOut * (l.FanIn + 1));
    }

    /// <summary>
    /// The memory <see cref="Precompute"/> holds once every rank's blocks are precomputed: one product of each
    /// factored layer per block, in bytes (0 when no layer is factored).
    /// </summary>
    public long PrecomputedBytes { get; }

    /// <summary>
    /// Computes worker <paramref name="rank"/>'s blocks' products from its pack now, for the next
    /// <see cref="Apply"/> or <see cref="Gradient"/> to use instead of multiplying them out then: a worker
    /// precomputes its own while it waits for the update, a parameter server each worker's as its pack
    /// comes in. The same products into the same tree, so the same bits. <paramref name="shardInputs"/> is
    /// that worker's rows' x (read when the first layer is factored). One rank at a time: the partial
    /// sums of a block go through this replica's scratch buffers.
    /// </summary>
    public void Precompute(int rank, ReadOnlySpan<T> ownPack, ReadOnlySpan<T> shardInputs)
    {
        var layout = _ranks[rank];
        if (ownPack.Length != layout.Length)
            throw new ArgumentException($"Shard {rank}'s pack has {ownPack.Length} values; {layout.Length} expected.", nameof(ownPack));
        for (int j = 0; j < layout.Blocks.Count; j++)
        {
            var block = layout.Blocks[j];
            int index = _firstBlock[rank] + j;
            for (int l = 0; l < block.Layout.Layers.Count; l++)
            {
                var slots = block.Layout.Layers[l];
                if (!slots.Factored) continue;
                var values = ownPack.Slice(block.Offset, block.Layout.Length);
                var delta = values.Slice(slots.Delta, block.Rows.Count * slots.FanOut);
                var input = slots.Input >= 0
                    ? values.Slice(slots.Input, block.Rows.Count * slots.FanIn)
                    : shardInputs.Slice((block.Rows.Start - layout.Rows.Start) * slots.FanIn, block.Rows.Count * slots.FanIn);
                var own = _own[l][index] ??= new T[slots.FanOut * (slots.FanIn + 1)];
                var ownBias = _biases[l] is null ? default : own.AsSpan(slots.FanOut * slots.FanIn);
                BlockValue(slots, index, delta, input, block.Rows.Start, new Sum(own.AsSpan(0, slots.FanOut * slots.FanIn), ownBias), 0);
            }
            _precomputed[index] = true;
        }
    }

    /// <summary>
    /// <see cref="Precompute"/> from the whole batch's x (<paramref name="batchInputs"/>, Batch x inputs; read when
    /// the first layer is factored): what a parameter server, which holds every row, passes.
    /// </summary>
    public void PrecomputeFromBatch(int rank, ReadOnlySpan<T> pack, ReadOnlySpan<T> batchInputs)
    {
        var rows = _ranks[rank].Rows;
        int inputs = _plan.Model.InputSize;
        Precompute(rank, pack, _plan.NeedsBatchInputs ? batchInputs.Slice(rows.Start * inputs, rows.Count * inputs) : []);
    }

    /// <summary>Forgets every precomputed share (the replica was replaced, or the step begun again, so they no longer apply).</summary>
    public void DiscardPrecomputed() => Array.Clear(_precomputed);

    /// <summary>
    /// Forgets the precomputed shares and lets go of every buffer the update has made (each up to a model's size);
    /// the next call makes again what it needs. For a holder that stops applying updates for a while (a worker
    /// whose steps a step team computes at the parameter server's own parameters).
    /// </summary>
    public void Release()
    {
        DiscardPrecomputed();
        _gradient = null;
        _scratch.Clear();
        _biasScratch.Clear();
        foreach (var layer in _own) Array.Clear(layer);
    }

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
            _gradient ??= LargeArrays.New<T>(_plan.Layout.Count);
            Build(update, batchInputs, _gradient);
            _optimizer.Step(step, parameters, _gradient, state);
        }
        DiscardPrecomputed();
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
        Build(update, batchInputs, gradient);
        DiscardPrecomputed();
    }

    /// <summary>
    /// Whether the gradient is the update element by element (no layer factored: the update is laid out
    /// like the parameters), so that any range of it can be written alone (<see cref="GradientRange"/>).
    /// </summary>
    public bool ElementWise => !_plan.AnyFactored;

    /// <summary>
    /// Writes <paramref name="range"/> of the gradient <see cref="Gradient"/> writes, from a dense-only
    /// update: each element is its update value times the loss scale, the same operation, so the same bits.
    /// Disjoint ranges may be written on several threads at once.
    /// </summary>
    public void GradientRange(ReadOnlySpan<T> update, Shard range, Span<T> gradient)
    {
        if (!ElementWise)
            throw new InvalidOperationException("A factored layer's gradient is a product over the whole batch; build it whole (Gradient).");
        Check(update, []);
        if (gradient.Length != _plan.Layout.Count)
            throw new ArgumentException($"gradient has {gradient.Length} values, the model has {_plan.Layout.Count}.", nameof(gradient));
        var from = update.Slice(range.Start, range.Count);
        var to = gradient.Slice(range.Start, range.Count);
        if (_scale != 1.0) TensorPrimitives.Multiply(from, T.CreateTruncating(_scale), to);
        // An update made the gradient in place is it already (sse: scale 1).
        else if (!Unsafe.AreSame(ref MemoryMarshal.GetReference(from), ref MemoryMarshal.GetReference(to))) from.CopyTo(to);
    }

    private void Check(ReadOnlySpan<T> update, ReadOnlySpan<T> batchInputs)
    {
        if (update.Length != _plan.Update.Length)
            throw new ArgumentException($"The update has {update.Length} values; the job's plan expects {_plan.Update.Length}.", nameof(update));
        if (_plan.NeedsBatchInputs && batchInputs.Length != _plan.Batch * _plan.Model.InputSize)
            throw new ArgumentException($"The batch inputs have {batchInputs.Length} values; {_plan.Batch} samples of {_plan.Model.InputSize} are needed.", nameof(batchInputs));
    }

    private void Build(ReadOnlySpan<T> update, ReadOnlySpan<T> batchInputs, Span<T> g)
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
            var sum = new Sum(weights, bias);
            var delta = update.Slice(slots.Delta, batch * slots.FanOut);
            var input = slots.Input >= 0 ? update.Slice(slots.Input, batch * slots.FanIn) : batchInputs;
            for (int i = 0; i < _blocks.Length; i++)
            {
                foreach (var step in _stepsOf[i])
                {
                    var block = _blocks[i];
                    bool own = _precomputed[i] && _own[l][i] is not null;
                    if (step.Op != ReduceOp.Merge && !own && _leafSteps[i].Length == 1)
                    {
                        // A block of one micro-shard: its product goes straight into (or onto) the slot.
                        Leaf(slots, _plan.Micro.Leaves[block.Node.First], delta, input, 0, Slot(step.Slot, sum, slots), step.Op == ReduceOp.Add, step.Slot + 1);
                        continue;
                    }
                    // Set: block i's value into the slot; Add: into the slot above (free: the stack is no higher), then added.
                    int into = step.Op == ReduceOp.Add ? step.Slot + 1 : step.Slot;
                    if (step.Op != ReduceOp.Merge)
                    {
                        var target = Slot(into, sum, slots);
                        if (own)
                        {
                            var value = _own[l][i]!;
                            value.AsSpan(0, target.Weights.Length).CopyTo(target.Weights);
                            if (!target.Bias.IsEmpty) value.AsSpan(target.Weights.Length, target.Bias.Length).CopyTo(target.Bias);
                        }
                        else
                        {
                            BlockValue(slots, i, delta.Slice(block.Rows.Start * slots.FanOut, block.Rows.Count * slots.FanOut),
                                input.Slice(block.Rows.Start * slots.FanIn, block.Rows.Count * slots.FanIn), block.Rows.Start, target, into);
                        }
                    }
                    if (step.Op != ReduceOp.Set) Slot(step.Slot, sum, slots).Add(Slot(step.Slot + 1, sum, slots));
                }
            }
        }
        if (_scale != 1.0) TensorPrimitives.Multiply(g, T.CreateTruncating(_scale), g);
    }

    /// <summary>
    /// Block <paramref name="block"/>'s product Σ_m δ_mᵀ·a_m and bias Σ_m rowsum(δ_m) over its micro-shards, up
    /// the tree, into <paramref name="target"/>, which is slot <paramref name="depth"/>; deeper slots are free
    /// for partial sums. <paramref name="delta"/> and <paramref name="input"/> hold the block's rows, the
    /// first being the batch's row <paramref name="firstRow"/>.
    /// </summary>
    private void BlockValue(PackLayer slots, int block, ReadOnlySpan<T> delta, ReadOnlySpan<T> input, int firstRow, Sum target, int depth)
    {
        var leaves = _plan.Micro.Leaves;
        int first = _blocks[block].Node.First;
        foreach (var step in _leafSteps[block])
        {
            var to = step.Slot == 0 ? target : Scratch(depth + step.Slot, slots, target.Bias.IsEmpty);
            if (step.Op == ReduceOp.Merge)
            {
                to.Add(Scratch(depth + step.Slot + 1, slots, target.Bias.IsEmpty));
                continue;
            }
            Leaf(slots, leaves[first + step.Input], delta, input, firstRow, to, step.Op == ReduceOp.Add, depth + step.Slot + 1);
        }
    }

    /// <summary>
    /// Micro-shard <paramref name="leaf"/>'s product δᵀ·a and bias row sum into <paramref name="to"/>, or added
    /// to it (<paramref name="add"/>): in place where the GEMM promises the bits of adding the product formed
    /// alone (<see cref="IBlas.AddsInOnePass{T}"/>), else formed a block of rows at a time in scratch and added where
    /// a row has the same bits in any block (<see cref="IBlas.RowsAlike"/>, <see cref="TermRows"/>), else formed
    /// whole in scratch slot <paramref name="termSlot"/> and added; its bias term in bias scratch slot <paramref name="termSlot"/>.
    /// <paramref name="delta"/> and <paramref name="input"/> hold rows from the batch's row <paramref name="firstRow"/> on.
    /// </summary>
    private void Leaf(PackLayer slots, Shard leaf, ReadOnlySpan<T> delta, ReadOnlySpan<T> input, int firstRow, Sum to, bool add, int termSlot)
    {
        int offset = leaf.Start - firstRow;
        var leafDelta = delta.Slice(offset * slots.FanOut, leaf.Count * slots.FanOut);
        var leafInput = input.Slice(offset * slots.FanIn, leaf.Count * slots.FanIn);
        if (!add)
        {
            Product(slots, leafDelta, leafInput, leaf.Count, to.Weights);
            if (!to.Bias.IsEmpty) Mlp<T>.SumRows(leafDelta, leaf.Count, slots.FanOut, to.Bias);
            return;
        }
        if (_blas.AddsInOnePass<T>(Transpose.Yes, Transpose.No, slots.FanOut, slots.FanIn, leaf.Count))
        {
            _blas.GemmAdd(Transpose.Yes, Transpose.No, slots.FanOut, slots.FanIn, leaf.Count, leafDelta, slots.FanOut, leafInput, slots.FanIn, to.Weights, slots.FanIn);
        }
        else if (_blas.RowsAlike)
        {
            // NOTE: a block of rows at a time, formed in scratch and added (each row has its bits in any block): a scratch
            // for the whole product would be a second copy of the layer, the first layer's nearly the whole model.
            int rows = TermRows(slots.FanOut);
            var term = TermScratch(rows * slots.FanIn);
            for (int r = 0; r < slots.FanOut; r += rows)
            {
                var block = term[..(Math.Min(rows, slots.FanOut - r) * slots.FanIn)];
                var weights = to.Weights.Slice(r * slots.FanIn, block.Length);
                Product(slots, leafDelta[r..], leafInput, leaf.Count, block);
                TensorPrimitives.Add(weights, block, weights);
            }
        }
        else
        {
            // A GEMM that promises neither (OpenBLAS past one of its passes over k, or a shape too large to try) forms
            // the product whole, as the workers form a dense layer's, so the exchange chosen does not change the bits:
            // the scratch is a layer's.
            var term = Scratch(termSlot, slots, noBias: true).Weights;
            Product(slots, leafDelta, leafInput, leaf.Count, term);
            TensorPrimitives.Add(to.Weights, term, to.Weights);
        }
        if (to.Bias.IsEmpty) return;
        var termBias = BiasScratch(termSlot, slots.FanOut);
        Mlp<T>.SumRows(leafDelta, leaf.Count, slots.FanOut, termBias);
        TensorPrimitives.Add(to.Bias, termBias, to.Bias);
    }

    /// <summary>Slot <paramref name="slot"/> of the top-level sum: 0 is the gradient's own weights and bias.</summary>
    private Sum Slot(int slot, Sum gradient, PackLayer slots) => slot == 0 ? gradient : Scratch(slot, slots, gradient.Bias.IsEmpty);

    /// <summary>Scratch slot <paramref name="slot"/> (from 1) for a layer of <paramref name="slots"/>' shape: weights, then bias (empty when the layer has none).</summary>
    private Sum Scratch(int slot, PackLayer slots, bool noBias)
    {
        while (_scratch.Count < slot) _scratch.Add(LargeArrays.New<T>(_valueLength));
        var buffer = _scratch[slot - 1].AsSpan();
        int w = slots.FanOut * slots.FanIn;
        return new Sum(buffer[..w], noBias ? default : buffer.Slice(w, slots.FanOut));
    }

    /// <summary>Scratch for a bias term of <paramref name="length"/> values at slot <paramref name="slot"/> (from 1), apart from <see cref="Scratch"/>'s.</summary>
    private Span<T> BiasScratch(int slot, int length)
    {
        while (_biasScratch.Count < slot) _biasScratch.Add([]);
        if (_biasScratch[slot - 1].Length < length) _biasScratch[slot - 1] = new T[length];
        return _biasScratch[slot - 1].AsSpan(0, length);
    }

    /// <summary>A factored layer's partial sum: its weight gradient and (empty when the layer has none) bias gradient.</summary>
    private readonly ref struct Sum(Span<T> weights, Span<T> bias)
    {
        public Span<T> Weights { get; } = weights;
        public Span<T> Bias { get; } = bias;

        /// <summary>this ← this + <paramref name="other"/>, element by element.</summary>
        public void Add(Sum other)
        {
            TensorPrimitives.Add(Weights, other.Weights, Weights);
            if (!Bias.IsEmpty) TensorPrimitives.Add(Bias, other.Bias, Bias);
        }
    }

    /// <summary>
    /// g_W = δᵀ · a   (fanOut, b) x (b, fanIn), or as many of its rows as <paramref name="destination"/> holds, from
    /// the row <paramref name="delta"/>'s first column stands for.
    /// </summary>
    private void Product(PackLayer slots, ReadOnlySpan<T> delta, ReadOnlySpan<T> input, int samples, Span<T> destination) =>
        _blas.Gemm(Transpose.Yes, Transpose.No, destination.Length / slots.FanIn, slots.FanIn, samples, delta, slots.FanOut, input, slots.FanIn, destination, slots.FanIn);

    /// <summary>The rows of a layer's weight gradient a product added by blocks of rows (<see cref="Leaf"/>) is formed in at a time: an eighth of them, rounded up.</summary>
    internal static int TermRows(int fanOut) => (fanOut + TermBlocks - 1) / TermBlocks;

    private const int TermBlocks = 8;

    /// <summary>The scratch block a micro-shard's product is formed in before it is added (<see cref="TermRows"/> rows), at least <paramref name="length"/> long.</summary>
    private Span<T> TermScratch(int length)
    {
        if (_term.Length < length) _term = new T[length];
        return _term.AsSpan(0, length);
    }
}

/// <summary>
/// A worker's half of a step: forward and backward on each of its micro-shards, summed up the
/// micro-shard tree into its blocks' packs (dense slots summed, factors placed at their rows), with
/// each block's summed loss. What <see cref="UpdateBuilder{T}"/> takes from worker <see cref="Rank"/>.
/// A model that can (<see cref="ILeafGradientModel{T}.LeavesTogether"/>) runs forward and backward once
/// over consecutive micro-shards of up to <see cref="TogetherRows"/> rows and forms each one's products
/// after: the same bits.
/// </summary>
public sealed class RankStep<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ExchangePlan _plan;
    private readonly ReduceStep[][] _leafSteps;
    private readonly PackSums<T> _sums;
    private T[]? _leafPack;
    private readonly Pack[] _leafLayouts;
    private readonly double[] _leafLosses, _lossSlots;
    // The worker's micro-shards (the first is micro-shard _firstLeaf), rows counted from their group's first; the
    // groups of them computed together; which group each is in; their losses.
    private readonly int _firstLeaf;
    private readonly Shard[] _ownLeaves;
    private readonly Group[] _groups;
    private readonly int[] _groupOf;
    private readonly double[] _ownLosses;

    /// <summary>Consecutive micro-shards of the worker computed together: <paramref name="Leaves"/> of them from its <paramref name="First"/>, rows [<paramref name="Row"/>, + <paramref name="Rows"/>) of its rows.</summary>
    private readonly record struct Group(int First, int Leaves, int Row, int Rows);

    /// <summary>
    /// Most rows of micro-shards computed together. Together, the weights are packed for each product once
    /// instead of once per micro-shard, which counts at 32 samples; past a few hundred rows the group's
    /// activations have left the cache by the time its micro-shards' products read them, and the packing is
    /// a small share of products that long (bench/Trainer.Bench `leaves`).
    /// </summary>
    public const int TogetherRows = 128;

    public RankStep(ExchangePlan plan, int rank, int workers)
    {
        _plan = plan;
        Rank = rank;
        Layout = plan.RankPack(rank, workers);
        _leafSteps = [.. Layout.Blocks.Select(b => plan.Micro.Schedule(plan.Micro.LeavesOf(b.Node)))];
        _sums = new PackSums<T>(plan);
        int slots = _leafSteps.Max(MicroShards.SlotsOf);
        _sums.Reserve(slots);
        _lossSlots = new double[slots];
        _leafLayouts = [.. plan.Micro.Leaves.Select(l => plan.PackLayout(l.Count))];
        _leafLosses = new double[plan.Micro.Count];
        var owned = plan.Micro.Owned(rank, workers);
        _firstLeaf = owned.Start;
        var ownLeaves = plan.Micro.Leaves[owned.Start..owned.End];
        var groups = new List<Group>();
        _groupOf = new int[ownLeaves.Length];
        for (int i = 0, first = 0, rows = 0; i < ownLeaves.Length; i++)
        {
            if (i > first && rows + ownLeaves[i].Count > TogetherRows)
            {
                groups.Add(new Group(first, i - first, ownLeaves[first].Start - Layout.Rows.Start, rows));
                (first, rows) = (i, 0);
            }
            rows += ownLeaves[i].Count;
            _groupOf[i] = groups.Count;
            if (i == ownLeaves.Length - 1) groups.Add(new Group(first, i + 1 - first, ownLeaves[first].Start - Layout.Rows.Start, rows));
        }
        _groups = [.. groups];
        _ownLeaves = [.. ownLeaves.Select((l, i) => l with { Start = l.Start - Layout.Rows.Start - _groups[_groupOf[i]].Row })];
        _ownLosses = new double[_ownLeaves.Length];
    }

    public int Rank { get; }

    /// <summary>The worker's pack: its samples and blocks.</summary>
    public RankPack Layout { get; }

    /// <summary>
    /// Writes the worker's pack at <paramref name="parameters"/> into <paramref name="pack"/> and each
    /// block's summed loss into <paramref name="losses"/>. <paramref name="x"/> and <paramref name="y"/>
    /// hold the worker's rows (<see cref="RankPack.Rows"/>), in batch order.
    /// </summary>
    public void Compute(IGradientModel<T> model, ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, Span<T> pack, Span<double> losses)
    {
        if (pack.Length != Layout.Length)
            throw new ArgumentException($"The pack buffer has {pack.Length} values; worker {Rank}'s pack has {Layout.Length}.", nameof(pack));
        if (losses.Length != Layout.Blocks.Count)
            throw new ArgumentException($"{losses.Length} losses asked for; worker {Rank}'s pack has {Layout.Blocks.Count} blocks.", nameof(losses));
        int inputs = _plan.Model.InputSize, outputs = _plan.Model.OutputSize;
        var leaves = _plan.Micro.Leaves;
        var leafModel = model as ILeafGradientModel<T>;
        var together = leafModel is { LeavesTogether: true } ? leafModel : null;
        int computed = -1;
        for (int j = 0; j < Layout.Blocks.Count; j++)
        {
            var block = Layout.Blocks[j];
            var values = pack.Slice(block.Offset, block.Layout.Length);
            int first = block.Node.First;
            foreach (var step in _leafSteps[j])
            {
                if (step.Op == ReduceOp.Merge)
                {
                    _sums.Run(step, default, block.Layout, values, block.Layout);
                    continue;
                }
                var leaf = leaves[first + step.Input];
                // A block of one micro-shard: its pack is the micro-shard's, written in place. A dense pack is laid out
                // alike for any samples, as the slots are, so a micro-shard's is written into its slot, or added to it
                // where the model can with the bits of adding it after; anything else is formed in scratch and summed.
                bool single = _leafSteps[j].Length == 1;
                var layout = single ? block.Layout : _leafLayouts[first + step.Input];
                bool add = step.Op == ReduceOp.Add;
                bool direct = single || (!layout.AnyFactored && (!add || leafModel?.AddsInPlace(layout) == true));
                var leafPack = direct ? _sums.Target(step.Slot, values, block.Layout) : LeafScratch(layout.Length);
                add &= direct;
                int own = first + step.Input - _firstLeaf, group = _groupOf[own];
                if (together is not null && _groups[group].Leaves > 1)
                {
                    var g = _groups[group];
                    var groupX = x.Slice(g.Row * inputs, g.Rows * inputs);
                    if (computed != group)
                    {
                        together.LeafLosses(parameters, groupX, y.Slice(g.Row * outputs, g.Rows * outputs),
                            _ownLeaves.AsSpan(g.First, g.Leaves), _ownLosses.AsSpan(g.First, g.Leaves));
                        computed = group;
                    }
                    together.LeafPack(groupX, _ownLeaves[own], layout, leafPack, add);
                    _leafLosses[step.Input] = _ownLosses[own];
                }
                else
                {
                    int row = leaf.Start - Layout.Rows.Start;
                    var leafX = x.Slice(row * inputs, leaf.Count * inputs);
                    var leafY = y.Slice(row * outputs, leaf.Count * outputs);
                    _leafLosses[step.Input] = add
                        ? leafModel!.LossAndPack(parameters, leafX, leafY, leaf.Count, layout, leafPack, add: true)
                        : GradientModels.LossAndPack(model, parameters, leafX, leafY, leaf.Count, layout, leafPack);
                }
                if (direct) continue;
                PackSums<T>.PlaceFactors(leafPack, layout, values, block.Layout, leaf.Start - block.Rows.Start);
                _sums.Run(step, leafPack, layout, values, block.Layout);
            }
            losses[j] = MicroShards.Reduce(_leafSteps[j], _leafLosses, _lossSlots);
        }
    }

    /// <summary>Scratch for a micro-shard's pack that is summed into its slot after (allocated when first needed: a dense plan whose model adds in place never needs it).</summary>
    private Span<T> LeafScratch(int length)
    {
        _leafPack ??= LargeArrays.New<T>(_leafLayouts.Max(l => l.Length));
        return _leafPack.AsSpan(0, length);
    }
}
