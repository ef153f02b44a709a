using System.Numerics;
using System.Numerics.Tensors;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Optim;

namespace Trainer.Core.Training;

/// <summary>
/// One worker's part of a job that splits the first layer's units across the workers
/// (<see cref="Parallelism.SplitFirstLayer"/>, Megatron-style column parallelism): worker r owns
/// the rows U_r of W_1 (and b_1) and computes, for the WHOLE batch, a_1[:, U_r] = f(x · W_1[U_r]ᵀ);
/// the layers above are small and every worker runs them on the whole batch, identically.
/// </summary>
/// <remarks>
/// A step: the workers' activation blocks, concatenated in rank order, give every worker the
/// whole a_1; each runs the upper network forward and backward (loss, upper gradients, and
/// δa_1 = δ_2 · W_2), takes its own columns δz_1[:, U_r] = δa_1[:, U_r] ⊙ f'(z_1[:, U_r]),
/// forms g_W1[U_r] = δz_1[:, U_r]ᵀ · x, applies the job's optimizer to its rows and the upper layers
/// (with their optimizer state: its own slice of W_1's and b_1's, and a replica of the upper layers'),
/// and computes its next activation block. Only B·|U_r| activations leave a worker per step (the seed: 25 KB),
/// against the whole W_1 gradient (800 KB) or its factors plus a 3.2M-multiply-add product per
/// replica in data parallelism.
/// Every value is computed by the same GEMMs, activations and updates as the single-process
/// full-batch step, only restricted to some rows or columns; the managed GEMM gives each element the
/// same operations whatever its tile, and the optimizer is element-wise, so a split job's weights and
/// optimizer state are bit-identical to a 1-worker job's, for ANY number of workers. OpenBLAS rounds per tile, so there they agree to rounding and
/// are bit-reproducible per worker count (FirstLayerSplitTests check both).
/// </remarks>
public sealed class FirstLayerSplit<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ModelSpec _model;
    private readonly IBlas _blas;
    private readonly Mlp<T> _upper;
    private readonly Optimizer<T> _optimizer;
    private readonly double _scale;
    private readonly T[] _x, _y;
    private readonly int _batch, _inputs, _units;
    private readonly Offsets _offsets;
    private readonly Shard[] _slices;
    // This worker's parameters, one array: W_1[U_r] (row-major), b_1[U_r], then the upper network's;
    // their gradient laid out the same, and their optimizer state slot after slot over the same
    // layout, so one optimizer call steps them all. _w1, _b1 and _upper* are views into these.
    private readonly T[] _parameters, _gradient, _state;
    private readonly ArraySegment<T> _w1, _b1, _upperParameters, _w1Gradient, _b1Gradient, _upperGradient;
    private readonly T[] _z, _a, _delta, _allActivations, _inputDelta;

    public FirstLayerSplit(TrainingSpec spec, int rank, T[] x, T[] y, IBlas? blas = null)
    {
        spec.Validate();
        if (spec.Parallelism != Parallelism.SplitFirstLayer)
            throw new ArgumentException("The job does not split its first layer.", nameof(spec));
        _model = spec.Model;
        _blas = blas ?? Blas.For(spec.Gemm);
        (_batch, _inputs, _units) = (spec.Batch, _model.InputSize, _model.LayerSizes[1]);
        if (x.Length != _batch * _inputs || y.Length != _batch * _model.OutputSize)
            throw new ArgumentException($"A split job's worker needs the whole batch: {_batch} x {_inputs} inputs and {_batch} x {_model.OutputSize} targets.");
        _slices = UnitSlices(spec);
        Units = _slices[rank];
        (_x, _y) = (x, y);
        var upperSpec = new ModelSpec(_model.LayerSizes.Skip(1).ToArray(), _model.Activation, _model.Loss, _model.Bias);
        _upper = new Mlp<T>(upperSpec, _blas);
        _offsets = Offsets.Of(_model);
        _optimizer = Optimizer<T>.For(spec);
        _scale = _model.Loss.Scale(_batch, _model.OutputSize);
        int own = Units.Count;
        int w1 = own * _inputs, b1 = _model.Bias ? own : 0, upper = _upper.Layout.Count;
        _parameters = new T[w1 + b1 + upper];
        _gradient = new T[_parameters.Length];
        _state = new T[_optimizer.StateSlots * _parameters.Length];
        (_w1, _b1, _upperParameters) = (new(_parameters, 0, w1), new(_parameters, w1, b1), new(_parameters, w1 + b1, upper));
        (_w1Gradient, _b1Gradient, _upperGradient) = (new(_gradient, 0, w1), new(_gradient, w1, b1), new(_gradient, w1 + b1, upper));
        _z = new T[_batch * own];
        _a = new T[_batch * own];
        _delta = new T[_batch * own];
        _allActivations = new T[_batch * _units];
        _inputDelta = new T[_batch * _units];
    }

    /// <summary>The first layer's units this worker owns.</summary>
    public Shard Units { get; }

    /// <summary>How many steps the parameters have taken; -1 until <see cref="Load"/>.</summary>
    public int StepsApplied { get; private set; } = -1;

    /// <summary>Values in this worker's activation block (batch x its units).</summary>
    public int BlockLength => _batch * Units.Count;

    /// <summary>
    /// Values in this worker's share (<see cref="WriteShare"/>): its parameters (W_1 rows, b_1 values,
    /// the upper network), then each optimizer-state slot over the same parameters.
    /// </summary>
    public int ShareLength => _parameters.Length + _state.Length;

    /// <summary>The first layer's units of every rank: contiguous, in rank order, sizes differing by at most one.</summary>
    public static Shard[] UnitSlices(TrainingSpec spec) => Shard.Split(spec.Model.LayerSizes[1], spec.Workers);

    /// <summary>
    /// Takes this worker's rows of the whole-model <paramref name="parameters"/> and the same rows of each
    /// slot of the whole-model optimizer <paramref name="state"/> (slot after slot over the flat parameters:
    /// StateSlots·parameter count values, empty for SGD), after <paramref name="stepsCompleted"/> steps.
    /// </summary>
    public void Load(ReadOnlySpan<T> parameters, ReadOnlySpan<T> state, int stepsCompleted)
    {
        if (parameters.Length != _offsets.Count)
            throw new ArgumentException($"parameters has {parameters.Length} values, the model has {_offsets.Count}.", nameof(parameters));
        int slots = _optimizer.StateSlots;
        Optimizers.CheckState(_optimizer.Spec, state.Length, _offsets.Count, nameof(state));
        if (stepsCompleted < 0)
            throw new ArgumentOutOfRangeException(nameof(stepsCompleted), stepsCompleted, "A step count is 0 or more.");
        int length = _parameters.Length;
        Gather(parameters, _parameters);
        for (int k = 0; k < slots; k++) Gather(state.Slice(k * _offsets.Count, _offsets.Count), _state.AsSpan(k * length, length));
        StepsApplied = stepsCompleted;
    }

    /// <summary>This worker's part of one whole-model buffer (parameters or one state slot): its W_1 rows, its b_1 values, the upper network.</summary>
    private void Gather(ReadOnlySpan<T> whole, Span<T> own)
    {
        int w1 = _w1.Count, b1 = _b1.Count;
        whole.Slice(_offsets.W1 + Units.Start * _inputs, w1).CopyTo(own);
        if (b1 > 0) whole.Slice(_offsets.B1 + Units.Start, b1).CopyTo(own[w1..]);
        whole[_offsets.Upper..].CopyTo(own[(w1 + b1)..]);
    }

    /// <summary>a_1[:, U_r] at the current parameters (batch x its units), into <paramref name="block"/>.</summary>
    public void Activations(Span<T> block)
    {
        RequireParameters();
        if (block.Length != BlockLength)
            throw new ArgumentException($"The block has {block.Length} values; {_batch} samples x {Units.Count} units expected.", nameof(block));
        int own = Units.Count;
        // z = x · W_1[U_r]ᵀ   (B, inputs) x (inputs, own)
        _blas.Gemm(Transpose.No, Transpose.Yes, _batch, own, _inputs, _x, _inputs, _w1, _inputs, _z, own);
        if (_b1.Count > 0)
            for (int r = 0; r < _batch; r++) TensorPrimitives.Add(_z.AsSpan(r * own, own), _b1, _z.AsSpan(r * own, own));
        Models.Activations.Forward(_model.Activation, _z, _a);
        _a.CopyTo(block);
    }

    /// <summary>
    /// One step from the whole batch's first-layer activations (<paramref name="blocks"/>: every
    /// rank's block in rank order, each batch x its units). Updates this worker's parameters and
    /// returns the step's loss (computed before the update, scaled like the single-process step's).
    /// Call <see cref="Activations"/> first: the step reuses its z and a.
    /// </summary>
    public double Step(ReadOnlySpan<T> blocks)
    {
        RequireParameters();
        if (blocks.Length != _batch * _units)
            throw new ArgumentException($"The activation blocks have {blocks.Length} values; {_batch} samples x {_units} units expected.", nameof(blocks));
        // Interleave the blocks into row-major a_1 (B, units).
        foreach (var slice in _slices)
        {
            var block = blocks.Slice(_batch * slice.Start, _batch * slice.Count);
            for (int r = 0; r < _batch; r++) block.Slice(r * slice.Count, slice.Count).CopyTo(_allActivations.AsSpan(r * _units + slice.Start, slice.Count));
        }
        double loss = _upper.LossGradientAndInputDelta(_upperParameters, _allActivations, _y, _batch, _upperGradient, _inputDelta);
        int own = Units.Count;
        for (int r = 0; r < _batch; r++) _inputDelta.AsSpan(r * _units + Units.Start, own).CopyTo(_delta.AsSpan(r * own, own));
        // δz_1[:, U_r] = δa_1[:, U_r] ⊙ f'(z_1[:, U_r]); g_W1[U_r] = δz_1ᵀ · x   (own, B) x (B, inputs)
        Models.Activations.Backward(_model.Activation, _z, _a, _delta);
        _blas.Gemm(Transpose.Yes, Transpose.No, own, _inputs, _batch, _delta, own, _x, _inputs, _w1Gradient, _inputs);
        if (_b1.Count > 0) Mlp<T>.SumRows(_delta, _batch, own, _b1Gradient);
        if (_scale != 1.0)
        {
            var scale = T.CreateTruncating(_scale);
            TensorPrimitives.Multiply(_w1Gradient, scale, _w1Gradient);
            TensorPrimitives.Multiply(_b1Gradient, scale, _b1Gradient);
            TensorPrimitives.Multiply(_upperGradient, scale, _upperGradient);
        }
        // The optimizer is element-wise, so stepping this worker's rows and the upper layers in one call,
        // at the job's step number, gives each value the bits of the single-process step.
        _optimizer.Step(StepsApplied + 1, _parameters, _gradient, _state);
        StepsApplied++;
        return loss * _scale;
    }

    /// <summary>This worker's share: its parameters (W_1 rows, b_1 values, the upper network), then its optimizer state slot after slot over them.</summary>
    public void WriteShare(Span<T> share)
    {
        RequireParameters();
        if (share.Length != ShareLength)
            throw new ArgumentException($"The share buffer has {share.Length} values; {ShareLength} expected.", nameof(share));
        _parameters.CopyTo(share);
        _state.CopyTo(share[_parameters.Length..]);
    }

    /// <summary>
    /// Whole-model parameters and optimizer state (slot after slot over the flat parameters; empty for SGD)
    /// from every rank's share (rank order); the upper network and its state are taken from rank 0's.
    /// </summary>
    public static void Merge(TrainingSpec spec, IReadOnlyList<T[]> shares, Span<T> parameters, Span<T> state)
    {
        int workers = UnitSlices(spec).Length;
        if (shares.Count != workers)
            throw new ArgumentException($"{shares.Count} shares for {workers} workers.", nameof(shares));
        for (int rank = 0; rank < workers; rank++) MergeShare(spec, rank, shares[rank], parameters, state);
    }

    /// <summary>
    /// Writes rank <paramref name="rank"/>'s share into its place in the whole-model
    /// <paramref name="parameters"/> and each slot of the whole-model <paramref name="state"/>; rank 0's also
    /// brings the upper network. Every rank's share merged this way gives <see cref="Merge"/>'s result,
    /// without gathering the shares first.
    /// </summary>
    public static void MergeShare(TrainingSpec spec, int rank, ReadOnlySpan<T> share, Span<T> parameters, Span<T> state)
    {
        var model = spec.Model;
        int inputs = model.InputSize;
        var offsets = Offsets.Of(model);
        var slices = UnitSlices(spec);
        int slots = spec.Optimizer.StateSlots;
        if ((uint)rank >= (uint)slices.Length)
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"The job has {slices.Length} workers.");
        if (parameters.Length != offsets.Count)
            throw new ArgumentException($"parameters has {parameters.Length} values, the model has {offsets.Count}.", nameof(parameters));
        Optimizers.CheckState(spec.Optimizer, state.Length, offsets.Count, nameof(state));
        int upperLength = offsets.Count - offsets.Upper;
        var slice = slices[rank];
        int w1 = slice.Count * inputs, b1 = model.Bias ? slice.Count : 0, length = w1 + b1 + upperLength;
        if (share.Length != (1 + slots) * length)
            throw new ArgumentException($"Worker {rank}'s share has {share.Length} values; {(1 + slots) * length} expected ({length} parameters and {slots} state slot(s) over them).", nameof(share));
        for (int block = 0; block <= slots; block++)
        {
            var part = share.Slice(block * length, length);
            var whole = block == 0 ? parameters : state.Slice((block - 1) * offsets.Count, offsets.Count);
            part[..w1].CopyTo(whole.Slice(offsets.W1 + slice.Start * inputs, w1));
            if (b1 > 0) part.Slice(w1, b1).CopyTo(whole.Slice(offsets.B1 + slice.Start, b1));
            if (rank == 0) part.Slice(w1 + b1, upperLength).CopyTo(whole[offsets.Upper..]);
        }
    }

    /// <summary>Where w_1, b_1 (-1 without biases) and the layers above start in the model's flat parameters, and their count.</summary>
    private readonly record struct Offsets(int W1, int B1, int Upper, int Count)
    {
        public static Offsets Of(ModelSpec model)
        {
            var layout = ParameterLayout.For(model);
            return new(layout.Weight(1).Offset, layout.Bias(1)?.Offset ?? -1, layout.Weight(2).Offset, layout.Count);
        }
    }

    private void RequireParameters()
    {
        if (StepsApplied < 0) throw new InvalidOperationException("The worker holds no parameters yet; Load them first.");
    }
}
