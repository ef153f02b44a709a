using System.Numerics.Tensors;
using Trainer.Core.Linalg;
using Trainer.Core.Models;

namespace Trainer.Core.Autograd;

/// <summary>
/// The same multi-layer perceptron as <see cref="Mlp"/> (same <see cref="ModelSpec"/>, same flat
/// <see cref="ParameterLayout"/>, same SUMMED loss), with gradients from the autograd
/// engine instead of a hand-derived backward pass, plus an optional input-gradient penalty.
/// </summary>
/// <remarks>
/// Legend: B = samples, n_l = width of layer l, C = n_L, one sample per row, as in <see cref="Mlp"/>:
/// <code>
/// z_l = a_{l-1} · W_lᵀ + b_l     a_0 = X (B, n_0), a_l = f(z_l), y_pred = z_L
/// sse = Σ (y_pred - Y)²                                        (sse and mse)
/// ce  = Σ Y ⊙ (log Σ_cols exp(y_pred - M) - (y_pred - M))      M = row maxima (B, 1), a constant
/// </code>
/// The formulas below write sse for whichever summed loss the spec has.
/// Input-gradient penalty, weight λ (<see cref="GradientPenalty"/>):
/// <code>
/// loss = sse + λ · ‖∂sse/∂X‖²_F  =  sse + λ · Σ_samples ‖∂sse/∂x_s‖²
/// </code>
/// Its gradient with respect to the parameters needs double backward: ∂sse/∂X is computed with
/// createGraph, so it is a graph tensor, and the second pass differentiates through it.
/// <para>
/// Shard-decomposable: sse is a sum of per-sample terms and x_s only reaches sample s's term, so
/// ∂sse/∂x_s is the same whether computed on the full batch or on the shard holding s. Both
/// parts of the loss are therefore sums over samples, and the sum of shard results is the
/// full-batch result, whatever the number of workers.
/// </para>
/// <para>
/// MSE: like <see cref="Mlp"/>, this always returns the SUMMED value above; the reducer applies
/// <see cref="Losses.Scale"/> = 1/(N·D_out) once. The trained objective is then
/// (sse + λ·‖∂sse/∂X‖²) / (N·D_out) = mse + λ·(N·D_out)·‖∂mse/∂X‖²: λ always weighs the gradient
/// of the summed error, so its meaning does not change with the loss kind or the worker count.
/// </para>
/// Parameters are copied into reused leaf buffers on every call; not thread-safe (one instance per worker).
/// </remarks>
public sealed class AutogradMlp : IGradientModel
{
    private readonly IBlas _blas;
    private readonly double[][] _parameterBuffers;   // one per ParameterLayout view, refilled each call
    private readonly StepBuffers _products = new();   // matmul outputs, recycled between calls
    private double[] _x = [];
    private double[] _y = [];

    /// <param name="gradientPenalty">λ of the input-gradient penalty; 0 turns it off.</param>
    public AutogradMlp(ModelSpec spec, double gradientPenalty = 0.0, IBlas? blas = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!double.IsFinite(gradientPenalty) || gradientPenalty < 0)
            throw new SpecException("gradient-penalty", gradientPenalty, "allowed: a finite number >= 0 (0 turns it off)");
        Spec = spec;
        Layout = ParameterLayout.For(spec);
        GradientPenalty = gradientPenalty;
        _blas = blas ?? Blas.Default;
        _parameterBuffers = [.. Layout.Views.Select(v => new double[v.Length])];
    }

    public ModelSpec Spec { get; }

    public ParameterLayout Layout { get; }

    /// <summary>λ, the weight of Σ_samples ‖∂sse/∂x_s‖² in the loss.</summary>
    public double GradientPenalty { get; }

    public double Loss(ReadOnlySpan<double> parameters, ReadOnlySpan<double> x, ReadOnlySpan<double> y, int samples)
    {
        ModelArguments.Check(Spec, Layout, parameters.Length, x.Length, y.Length, samples);
        if (GradientPenalty == 0.0)
        {
            using var noGrad = Autograd.NoGrad();
            return Forward(Leaves(parameters, requiresGrad: false), Inputs(x, samples, requiresGrad: false), Targets(y, samples)).Item();
        }
        // The penalty needs ∂sse/∂X, but no graph beyond it.
        using var grad = Autograd.EnableGrad();
        var xs = Inputs(x, samples, requiresGrad: true);
        var sse = Forward(Leaves(parameters, requiresGrad: false), xs, Targets(y, samples));
        var gx = Autograd.Grad(sse, xs);
        return sse.Item() + GradientPenalty * (gx * gx).Sum().Item();
    }

    public double LossAndGradient(ReadOnlySpan<double> parameters, ReadOnlySpan<double> x, ReadOnlySpan<double> y, int samples, Span<double> gradient)
    {
        ModelArguments.Check(Spec, Layout, parameters.Length, x.Length, y.Length, samples);
        if (gradient.Length != Layout.Count)
            throw new ArgumentException($"gradient has {gradient.Length} elements, the model has {Layout.Count} parameters.", nameof(gradient));
        using var grad = Autograd.EnableGrad();
        var leaves = Leaves(parameters, requiresGrad: true);
        bool penalized = GradientPenalty != 0.0;
        var xs = Inputs(x, samples, requiresGrad: penalized);
        var loss = Forward(leaves, xs, Targets(y, samples));
        if (penalized)
        {
            // First backward keeps its graph (createGraph) so the second one can run through it.
            var gx = Autograd.Grad(loss, xs, createGraph: true);
            loss += GradientPenalty * (gx * gx).Sum();
        }
        var grads = Autograd.Grad([loss], leaves, allowUnused: true);
        for (int i = 0; i < leaves.Length; i++)
        {
            var view = Layout.Views[i].Of(gradient);
            // NOTE: a parameter can be unused by the penalty graph only, never by sse; null means zero.
            if (grads[i] is { } g) g.Values.CopyTo(view);
            else view.Clear();
        }
        return loss.Item();
    }

    /// <summary>The forward pass and the summed squared error, written as it would be in PyTorch.</summary>
    private Tensor Forward(Tensor[] leaves, Tensor x, Tensor y)
    {
        // Every call starts here, and no tensor of the previous call outlives it (only numbers
        // leave this class), so its product buffers are free again.
        _products.ReleaseAll();
        var a = x;
        int next = 0;
        for (int l = 0; l < Spec.LayerCount; l++)
        {
            var w = leaves[next++];
            var z = Tensor.MatMul(a, w, transposeA: false, transposeB: true, _blas, _products);   // (B, n_{l-1}) · (n_l, n_{l-1})ᵀ
            if (Spec.Bias) z += leaves[next++];                             // (n_l,) broadcast over rows
            a = l < Spec.LayerCount - 1 ? Activate(z) : z;
        }
        return Spec.Loss == LossKind.CrossEntropy ? CrossEntropy(a, y) : (a - y).Pow(2).Sum();
    }

    /// <summary>Summed softmax cross-entropy, the same formula as <see cref="SoftmaxCrossEntropy"/>.</summary>
    private static Tensor CrossEntropy(Tensor logits, Tensor y)
    {
        // NOTE: the row maxima are a constant, not a graph node: log Σ exp(z - m) + m is the same
        // function of z for ANY constant m, so leaving m out of the graph changes no gradient (first or
        // second order); it only keeps exp from overflowing, as in PyTorch's log_softmax.
        int rows = logits.Shape.Rows, classes = logits.Shape.Cols;
        var maxima = new double[rows];
        for (int r = 0; r < rows; r++) maxima[r] = TensorPrimitives.Max(logits.Values.Slice(r * classes, classes));
        var shifted = logits - Tensor.Wrap(maxima, Shape.Matrix(rows, 1));
        var logSum = shifted.Exp().Sum(1, keepDim: true).Log();   // (B, 1)
        return (y * (logSum - shifted)).Sum();
    }

    private Tensor Activate(Tensor z) => Spec.Activation switch
    {
        Activation.Sigmoid => z.Sigmoid(),
        Activation.Tanh => z.Tanh(),
        Activation.Relu => z.Relu(),
        _ => throw new ArgumentOutOfRangeException(nameof(z), $"Activation {Spec.Activation} is not supported."),
    };

    /// <summary>Fresh leaf tensors over the reused buffers, one per parameter view (weights as matrices, biases as vectors).</summary>
    private Tensor[] Leaves(ReadOnlySpan<double> parameters, bool requiresGrad)
    {
        var leaves = new Tensor[_parameterBuffers.Length];
        for (int i = 0; i < leaves.Length; i++)
        {
            var view = Layout.Views[i];
            view.Of(parameters).CopyTo(_parameterBuffers[i]);
            var shape = view.Cols == 1 && view.Name.StartsWith('b') ? Shape.Vector(view.Rows) : Shape.Matrix(view.Rows, view.Cols);
            leaves[i] = Tensor.Wrap(_parameterBuffers[i], shape, requiresGrad);
        }
        return leaves;
    }

    private Tensor Inputs(ReadOnlySpan<double> x, int samples, bool requiresGrad) =>
        Tensor.Wrap(Fill(ref _x, x[..(samples * Spec.InputSize)]), Shape.Matrix(samples, Spec.InputSize), requiresGrad);

    private Tensor Targets(ReadOnlySpan<double> y, int samples) =>
        Tensor.Wrap(Fill(ref _y, y[..(samples * Spec.OutputSize)]), Shape.Matrix(samples, Spec.OutputSize));

    /// <summary>Copies into <paramref name="buffer"/>, reallocating only when the length changes (a tensor owns its whole array).</summary>
    private static double[] Fill(ref double[] buffer, ReadOnlySpan<double> values)
    {
        if (buffer.Length != values.Length) buffer = new double[values.Length];
        values.CopyTo(buffer);
        return buffer;
    }

}
