using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Numerics.Tensors;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Memory;
using Trainer.Core.Training;

namespace Trainer.Core.Models;

/// <summary>
/// The multi-layer perceptron with forward and backward derived by hand, batched, as in the seed.
/// Buffers for one batch size are allocated once, so steady-state steps allocate nothing.
/// </summary>
/// <remarks>
/// Legend: B = samples in the batch, n_l = width of layer l (n_0 = inputs), all row-major,
/// one sample per row (the transpose of the tutorial's column layout, same maths):
/// <code>
/// z_l = a_{l-1} · W_lᵀ + b_l        (B, n_l)      a_0 = x
/// a_l = f(z_l) for hidden l, a_L = z_L = y_pred
/// loss = sum((y_pred - y)^2)        sse, mse (their scale is applied after the shards are summed)
/// δ_L = 2 (y_pred - y)              (B, n_L)
///   or, for ce, loss = Σ_rows -Σ_k y_k log softmax(y_pred)_k and δ_L = softmax(y_pred)·Σ_k y_k - y (<see cref="SoftmaxCrossEntropy"/>)
/// g_W_l = δ_lᵀ · a_{l-1}            (n_l, n_{l-1})  the tutorial's g_w2 = g_y·hᵀ is wrong: it is aᵀ
/// g_b_l = Σ_rows δ_l
/// δ_{l-1} = (δ_l · W_l) ⊙ f'(z_{l-1})
/// </code>
/// T is double (<see cref="Mlp"/>, the default) or float (--precision float32): GEMMs go to the
/// BLAS overload of that type, activations to TensorPrimitives' generic kernels. The returned
/// loss is a double either way; see <see cref="SumSquaredError"/>.
/// Not thread-safe: one instance per worker.
/// </remarks>
public class Mlp<T> : ILeafGradientModel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly IBlas _blas;
    private readonly ParameterView[] _weights;
    private readonly ParameterView?[] _biases;
    private T[][] _z = [];      // pre-activations per layer (index l-1 for layer l)
    private T[][] _a = [];      // activations per hidden layer (index l-1), output is _z[L-1]
    private T[][] _delta = [];  // backward signal per layer
    private int _capacity;
    private int _leafRows;      // rows of the last LeafLosses, 0 once another pass used the buffers
    // The plain gradient is the pack of a plan without factors: the model's own flat layout.
    private readonly Pack _densePack;
    // A bias gradient formed before it is added to a partial sum (Products with add); the widest layer's.
    private readonly T[] _biasTerm;

    public Mlp(ModelSpec spec, IBlas? blas = null)
    {
        Spec = spec;
        Layout = ParameterLayout.For(spec);
        if (typeof(T) != typeof(double) && typeof(T) != typeof(float))
            throw new NotSupportedException($"Mlp<{typeof(T).Name}>: only double and float have BLAS kernels.");
        _blas = blas ?? Blas.Default;
        _weights = [.. Enumerable.Range(1, spec.LayerCount).Select(Layout.Weight)];
        _biases = [.. Enumerable.Range(1, spec.LayerCount).Select(Layout.Bias)];
        _densePack = ExchangePlan.For(spec, 1, factorsAvailable: false).PackLayout(0);
        _biasTerm = spec.Bias ? new T[spec.LayerSizes.Skip(1).Max()] : [];
    }

    public ModelSpec Spec { get; }

    public ParameterLayout Layout { get; }

    public double Loss(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples)
    {
        ModelArguments.Check(Spec, Layout, parameters.Length, x.Length, y.Length, samples);
        Forward(parameters, x, samples);
        return OutputLoss(y, samples, computeDelta: false);
    }

    /// <summary>
    /// Summed loss, and the network's outputs (the logits, for ce), <paramref name="samples"/> x n_L,
    /// into <paramref name="outputs"/>: what an evaluation needs besides the loss.
    /// </summary>
    public double Loss(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples, Span<T> outputs)
    {
        ModelArguments.Check(Spec, Layout, parameters.Length, x.Length, y.Length, samples);
        Outputs(parameters, x, samples, outputs);
        return OutputLoss(y, samples, computeDelta: false);
    }

    /// <summary>
    /// The network's outputs alone (the logits, for ce), <paramref name="samples"/> x n_L, into
    /// <paramref name="outputs"/>: a prediction, for inputs that have no targets.
    /// </summary>
    public void Outputs(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, int samples, Span<T> outputs)
    {
        ModelArguments.CheckInputs(Spec, Layout, parameters.Length, x.Length, samples);
        if (outputs.Length < samples * Spec.OutputSize)
            throw new ArgumentException($"outputs has {outputs.Length} elements, {samples} samples of {Spec.OutputSize} outputs need {samples * Spec.OutputSize}.", nameof(outputs));
        Forward(parameters, x, samples);
        _z[^1].AsSpan(0, samples * Spec.OutputSize).CopyTo(outputs);
    }

    public double LossAndGradient(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples, Span<T> gradient)
    {
        ModelArguments.Check(Spec, Layout, parameters.Length, x.Length, y.Length, samples);
        if (gradient.Length != Layout.Count)
            throw new ArgumentException($"gradient has {gradient.Length} elements, the model has {Layout.Count} parameters.", nameof(gradient));
        Forward(parameters, x, samples);
        double loss = OutputLoss(y, samples, computeDelta: true);
        Backward(parameters, x, samples, _densePack, gradient, add: false);
        return loss;
    }

    public double LossAndPack(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples, Pack pack, Span<T> destination)
        => LossAndPack(parameters, x, y, samples, pack, destination, add: false);

    public double LossAndPack(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples, Pack pack, Span<T> destination, bool add)
    {
        ModelArguments.Check(Spec, Layout, parameters.Length, x.Length, y.Length, samples);
        if (pack.Samples != samples || pack.Layers.Count != Spec.LayerCount || destination.Length != pack.Length)
            throw new ArgumentException($"The pack is laid out for {pack.Samples} samples and {pack.Length} values; got {samples} samples and a {destination.Length}-value destination.", nameof(pack));
        CheckAdd(pack, add);
        Forward(parameters, x, samples);
        double loss = OutputLoss(y, samples, computeDelta: true);
        Backward(parameters, x, samples, pack, destination, add);
        return loss;
    }

    /// <summary>
    /// Whether a pack laid out as <paramref name="pack"/> may be added to a partial sum in place
    /// (<see cref="LossAndPack(ReadOnlySpan{T}, ReadOnlySpan{T}, ReadOnlySpan{T}, int, Pack, Span{T}, bool)"/> and
    /// <see cref="LeafPack(ReadOnlySpan{T}, Shard, Pack, Span{T}, bool)"/> with add) with the bits of forming it
    /// alone and adding it: it has no factors, and this model's GEMM promises that at every layer's product
    /// (<see cref="IBlas.AddsInOnePass{T}"/>).
    /// </summary>
    public bool AddsInPlace(Pack pack)
    {
        if (pack.AnyFactored || pack.Layers.Count != Spec.LayerCount) return false;
        for (int l = 0; l < Spec.LayerCount; l++)
        {
            if (!_blas.AddsInOnePass<T>(Transpose.Yes, Transpose.No, Spec.LayerSizes[l + 1], Spec.LayerSizes[l], pack.Samples)) return false;
        }
        return true;
    }

    private void CheckAdd(Pack pack, bool add)
    {
        if (add && !AddsInPlace(pack))
            throw new InvalidOperationException($"A pack of {pack.Samples} samples{(pack.AnyFactored ? " with factors" : "")} cannot be added in place on the {_blas.Name} GEMM with the bits of adding it after; form it alone.");
    }

    /// <summary>
    /// Whether <see cref="LeafLosses"/> may run several micro-shards at once: this model's GEMM gives a row of
    /// a product the bits it gets with any other rows (<see cref="IBlas.RowsAlike"/>).
    /// </summary>
    public bool LeavesTogether => _blas.RowsAlike;

    /// <summary>
    /// Forward and backward once over the rows of every micro-shard in <paramref name="leaves"/> (consecutive,
    /// from row 0 of <paramref name="x"/>), and each one's summed loss into <paramref name="losses"/>; then
    /// <see cref="LeafPack"/> gives each one's pack. Both are the bits of <see cref="LossAndPack"/> on the
    /// micro-shard alone, where <see cref="LeavesTogether"/>: the products' rows are independent, so are the
    /// element-wise steps' elements (<see cref="Elementwise"/>), and the loss is summed per micro-shard.
    /// </summary>
    public void LeafLosses(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, ReadOnlySpan<Shard> leaves, Span<double> losses)
    {
        if (!LeavesTogether)
            throw new InvalidOperationException($"The {_blas.Name} GEMM does not promise a row the same bits with other rows; compute each micro-shard alone.");
        if (leaves.IsEmpty || leaves[0].Start != 0 || losses.Length != leaves.Length)
            throw new ArgumentException($"{leaves.Length} micro-shards from row {(leaves.IsEmpty ? 0 : leaves[0].Start)} and {losses.Length} losses: give consecutive micro-shards from row 0, a loss each.", nameof(leaves));
        for (int i = 1; i < leaves.Length; i++)
        {
            if (leaves[i].Start != leaves[i - 1].End)
                throw new ArgumentException($"Micro-shard {i} starts at row {leaves[i].Start}, not where the one before ends ({leaves[i - 1].End}).", nameof(leaves));
        }
        int samples = leaves[^1].End;
        ModelArguments.Check(Spec, Layout, parameters.Length, x.Length, y.Length, samples);
        Forward(parameters, x, samples);
        for (int i = 0; i < leaves.Length; i++) losses[i] = OutputLoss(y, leaves[i], computeDelta: true);
        Deltas(parameters, samples);
        _leafRows = samples;
    }

    /// <summary>The pack of micro-shard <paramref name="leaf"/> of the last <see cref="LeafLosses"/>, whose x <paramref name="x"/> is.</summary>
    public void LeafPack(ReadOnlySpan<T> x, Shard leaf, Pack pack, Span<T> destination) => LeafPack(x, leaf, pack, destination, add: false);

    public void LeafPack(ReadOnlySpan<T> x, Shard leaf, Pack pack, Span<T> destination, bool add)
    {
        if (leaf.Start < 0 || leaf.End > _leafRows || x.Length < _leafRows * Spec.InputSize)
            throw new ArgumentException($"Rows [{leaf.Start}, {leaf.End}) are not among the {_leafRows} rows of the last LeafLosses (x has {x.Length} values).", nameof(leaf));
        if (pack.Samples != leaf.Count || pack.Layers.Count != Spec.LayerCount || destination.Length != pack.Length)
            throw new ArgumentException($"The pack is laid out for {pack.Samples} samples and {pack.Length} values; got {leaf.Count} samples and a {destination.Length}-value destination.", nameof(pack));
        CheckAdd(pack, add);
        Products(x, leaf, pack, destination, add);
    }

    /// <summary>
    /// Loss and dense gradient of this network fed <paramref name="input"/>, and the loss's gradient
    /// with respect to that input, <paramref name="inputDelta"/> = δ_1 · W_1 (B, n_0): the signal a
    /// layer below this network (on another worker, in a split job) needs. The same GEMMs, in the same
    /// order per element, as this network's layers compute inside a deeper one.
    /// </summary>
    public double LossGradientAndInputDelta(ReadOnlySpan<T> parameters, ReadOnlySpan<T> input, ReadOnlySpan<T> y, int samples, Span<T> gradient, Span<T> inputDelta)
    {
        double loss = LossAndGradient(parameters, input, y, samples, gradient);
        int fanIn = Spec.LayerSizes[0], fanOut = Spec.LayerSizes[1];
        if (inputDelta.Length != samples * fanIn)
            throw new ArgumentException($"inputDelta has {inputDelta.Length} elements; {samples} samples x {fanIn} inputs expected.", nameof(inputDelta));
        Gemm(Transpose.No, Transpose.No, samples, fanIn, fanOut, _delta[0].AsSpan(0, samples * fanOut), fanOut, _weights[0].Of(parameters), fanIn, inputDelta, fanIn);
        return loss;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Forward(ReadOnlySpan<T> p, ReadOnlySpan<T> x, int b)
    {
        EnsureCapacity(b);
        _leafRows = 0;
        int layers = Spec.LayerCount;
        for (int l = 0; l < layers; l++)
        {
            int fanIn = Spec.LayerSizes[l], fanOut = Spec.LayerSizes[l + 1];
            ReadOnlySpan<T> input = l == 0 ? x[..(b * fanIn)] : _a[l - 1].AsSpan(0, b * fanIn);
            var z = _z[l].AsSpan(0, b * fanOut);
            // z = input · Wᵀ   (B, fanIn) x (fanIn, fanOut)
            Gemm(Transpose.No, Transpose.Yes, b, fanOut, fanIn, input, fanIn, _weights[l].Of(p), fanIn, z, fanOut);
            if (_biases[l] is { } bias)
            {
                var bv = bias.Of(p);
                for (int r = 0; r < b; r++) TensorPrimitives.Add(z.Slice(r * fanOut, fanOut), bv, z.Slice(r * fanOut, fanOut));
            }
            if (l < layers - 1) Activations.Forward(Spec.Activation, z, _a[l].AsSpan(0, b * fanOut));
        }
    }

    /// <summary>The summed loss of the spec's kind over the output layer; optionally δ_L into _delta[^1].</summary>
    private double OutputLoss(ReadOnlySpan<T> y, int b, bool computeDelta) => OutputLoss(y, new Shard(0, 0, b), computeDelta);

    /// <summary>The summed loss over the rows of <paramref name="rows"/> alone; optionally their δ_L.</summary>
    private double OutputLoss(ReadOnlySpan<T> y, Shard rows, bool computeDelta)
    {
        int outputs = Spec.OutputSize, start = rows.Start * outputs, length = rows.Count * outputs;
        var predictions = _z[^1].AsSpan(start, length);
        var delta = _delta[^1].AsSpan(start, length);
        if (Spec.Loss != LossKind.CrossEntropy) return SumSquaredError(predictions, y.Slice(start, length), delta, computeDelta);
        return SoftmaxCrossEntropy.Sum<T>(predictions, y.Slice(start, length), rows.Count, outputs, delta, computeDelta);
    }

    /// <summary>Sum of squared errors of the output; optionally δ_L = 2 (y_pred - y).</summary>
    /// <remarks>
    /// NOTE: the sum of squares is one sequential pass in double (<see cref="FixedOrder.SumOfSquares{T}"/>), in
    /// both precisions: a vectorized sum's order follows the CPU's vector width, so the loss would differ between
    /// silos on AVX2 and AVX-512 CPUs; and a float sum over B·n_L terms would lose digits the job's loss curve and
    /// the 1e-4 comparison with float64 need.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double SumSquaredError(ReadOnlySpan<T> pred, ReadOnlySpan<T> y, Span<T> diff, bool computeDelta)
    {
        TensorPrimitives.Subtract(pred, y, diff);
        double loss = FixedOrder.SumOfSquares<T>(diff);
        if (computeDelta) TensorPrimitives.Multiply(diff, T.CreateTruncating(2.0), diff);
        return loss;
    }

    private void Backward(ReadOnlySpan<T> p, ReadOnlySpan<T> x, int b, Pack pack, Span<T> g, bool add)
    {
        Deltas(p, b);
        Products(x, new Shard(0, 0, b), pack, g, add);
    }

    /// <summary>δ_l of every layer below the output's (δ_L is the loss's) over <paramref name="b"/> rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Deltas(ReadOnlySpan<T> p, int b)
    {
        for (int l = Spec.LayerCount - 1; l > 0; l--)
        {
            int fanIn = Spec.LayerSizes[l], fanOut = Spec.LayerSizes[l + 1];
            var delta = _delta[l].AsSpan(0, b * fanOut);
            // δ_{l-1} = (δ · W) ⊙ f'(z_{l-1})   (B, fanOut) x (fanOut, fanIn)
            var below = _delta[l - 1].AsSpan(0, b * fanIn);
            Gemm(Transpose.No, Transpose.No, b, fanIn, fanOut, delta, fanOut, _weights[l].Of(p), fanIn, below, fanIn);
            Activations.Backward(Spec.Activation, _z[l - 1].AsSpan(0, b * fanIn), _a[l - 1].AsSpan(0, b * fanIn), below);
        }
    }

    /// <summary>
    /// The pack of the rows <paramref name="rows"/> (of x and of the last forward and backward) into
    /// <paramref name="g"/>, or added to it (<paramref name="add"/>, where <see cref="AddsInPlace"/>): per layer
    /// g_W = δᵀ · input and g_b = Σ_rows δ over those rows, or their factors.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Products(ReadOnlySpan<T> x, Shard rows, Pack pack, Span<T> g, bool add)
    {
        int b = rows.Count;
        for (int l = Spec.LayerCount - 1; l >= 0; l--)
        {
            int fanIn = Spec.LayerSizes[l], fanOut = Spec.LayerSizes[l + 1];
            ReadOnlySpan<T> input = l == 0 ? x.Slice(rows.Start * fanIn, b * fanIn) : _a[l - 1].AsSpan(rows.Start * fanIn, b * fanIn);
            var delta = _delta[l].AsSpan(rows.Start * fanOut, b * fanOut);
            var slots = pack.Layers[l];
            if (slots.Factored)
            {
                // The layer's gradient leaves as its factors; the replicas multiply them out.
                delta.CopyTo(g.Slice(slots.Delta, b * fanOut));
                if (slots.Input >= 0) input.CopyTo(g.Slice(slots.Input, b * fanIn));
            }
            else
            {
                // g_W = δᵀ · input   (fanOut, B) x (B, fanIn); added, g_W + δᵀ · input with the bits of the product formed first.
                var weights = g.Slice(slots.Weights, fanOut * fanIn);
                if (add) _blas.GemmAdd(Transpose.Yes, Transpose.No, fanOut, fanIn, b, delta, fanOut, input, fanIn, weights, fanIn);
                else Gemm(Transpose.Yes, Transpose.No, fanOut, fanIn, b, delta, fanOut, input, fanIn, weights, fanIn);
                if (slots.Bias < 0) continue;
                var bias = g.Slice(slots.Bias, fanOut);
                if (!add)
                {
                    SumRows(delta, b, fanOut, bias);
                    continue;
                }
                // The rows' sum is formed first, as it is alone, then added.
                var term = _biasTerm.AsSpan(0, fanOut);
                SumRows(delta, b, fanOut, term);
                TensorPrimitives.Add(bias, term, bias);
            }
        }
    }

    /// <summary>sum = Σ_r rows[r], added in row order (the bias gradient).</summary>
    internal static void SumRows(ReadOnlySpan<T> rows, int count, int width, Span<T> sum)
    {
        sum.Clear();
        for (int r = 0; r < count; r++) TensorPrimitives.Add(sum, rows.Slice(r * width, width), sum);
    }

    private void Gemm(Transpose ta, Transpose tb, int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc) =>
        _blas.Gemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);

    private void EnsureCapacity(int samples)
    {
        if (samples <= _capacity) return;
        int layers = Spec.LayerCount;
        _z = new T[layers][];
        _a = new T[layers][];
        _delta = new T[layers][];
        for (int l = 0; l < layers; l++)
        {
            int width = Spec.LayerSizes[l + 1];
            _z[l] = LargeArrays.New<T>(samples * width);
            _a[l] = l < layers - 1 ? LargeArrays.New<T>(samples * width) : [];
            _delta[l] = LargeArrays.New<T>(samples * width);
        }
        _capacity = samples;
    }

}

/// <summary>The float64 hand-derived MLP, the engine of every job that does not ask for float32.</summary>
public sealed class Mlp(ModelSpec spec, IBlas? blas = null) : Mlp<double>(spec, blas), IGradientModel;
