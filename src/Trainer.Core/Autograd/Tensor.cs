using System.Globalization;
using System.Text;

namespace Trainer.Core.Autograd;

/// <summary>
/// Computes the gradients of an op's inputs from the gradient of its output, written with
/// Tensor ops so it is itself differentiable (create_graph). <paramref name="needs"/>[i] says
/// whether input i wants a gradient in this pass; rules return null for the others and skip the work.
/// </summary>
internal delegate Tensor?[] BackwardRule(Tensor grad, ReadOnlySpan<bool> needs);

/// <summary>
/// A float64 scalar, vector or matrix that remembers the op that made it, so gradients can flow
/// back through it (reverse-mode autograd, micrograd style, with PyTorch's semantics).
/// </summary>
/// <remarks>
/// Values are immutable: every op returns a new tensor (reshape may share storage). A tensor
/// built by an op while gradients are enabled and from at least one input that requires grad
/// records its inputs and a <see cref="BackwardRule"/>; leaves are the tensors you create.
/// Each op lives beside its backward rule in the partial files Tensor.*.cs; the engine that
/// runs the rules is <see cref="Autograd"/>. Not thread-safe, like a PyTorch graph.
/// </remarks>
public sealed partial class Tensor
{
    private static readonly Tensor[] NoParents = [];

    private readonly double[] _data;
    private BackwardRule? _backward;

    private Tensor(double[] data, Shape shape, bool requiresGrad = false)
    {
        _data = data;
        Shape = shape;
        RequiresGrad = requiresGrad;
        Parents = NoParents;
        Op = "leaf";
    }

    private Tensor(double[] data, Shape shape, Tensor[] parents, BackwardRule backward, string op)
    {
        _data = data;
        Shape = shape;
        RequiresGrad = true;
        Parents = parents;
        _backward = backward;
        Op = op;
    }

    public Shape Shape { get; }

    /// <summary>True when gradients flow to (leaf) or through (op result) this tensor.</summary>
    public bool RequiresGrad { get; private set; }

    /// <summary>A leaf is a tensor you created (not the result of a tracked op). Only leaves get <see cref="Grad"/>.</summary>
    public bool IsLeaf => Parents.Length == 0;

    /// <summary>
    /// The gradient accumulated by <see cref="Backward"/> on a leaf that requires grad; null until then.
    /// Like PyTorch, it ACCUMULATES across Backward calls: call <see cref="ZeroGrad"/> between steps.
    /// </summary>
    public Tensor? Grad { get; internal set; }

    /// <summary>The op that made this tensor ("mul", "matmul", ...), or "leaf".</summary>
    public string Op { get; }

    internal Tensor[] Parents { get; }

    /// <summary>True once a backward pass without retainGraph has released this node's saved values.</summary>
    internal bool IsFreed { get; private set; }

    /// <summary>The values, row-major.</summary>
    public ReadOnlySpan<double> Values => _data;

    /// <summary>
    /// Storage for callers that own a leaf and refill it between uses (a model reusing its
    /// parameter buffers). NOTE: only safe when no live graph still reads the old values.
    /// </summary>
    internal Span<double> Storage => _data;

    public int Size => _data.Length;

    // ---- creation -------------------------------------------------------------------------

    public static Tensor Scalar(double value, bool requiresGrad = false) => new([value], Shape.Scalar, requiresGrad);

    /// <summary>A vector holding a copy of <paramref name="values"/>.</summary>
    public static Tensor Vector(ReadOnlySpan<double> values, bool requiresGrad = false) =>
        new(values.ToArray(), Shape.Vector(values.Length), requiresGrad);

    /// <summary>A rows x cols matrix holding a copy of the row-major <paramref name="values"/>.</summary>
    public static Tensor Matrix(int rows, int cols, ReadOnlySpan<double> values, bool requiresGrad = false)
    {
        var shape = Shape.Matrix(rows, cols);
        if (values.Length != shape.Size)
            throw new ArgumentException($"A {rows}x{cols} matrix needs {shape.Size} values, got {values.Length}.", nameof(values));
        return new(values.ToArray(), shape, requiresGrad);
    }

    public static Tensor Matrix(double[,] values, bool requiresGrad = false)
    {
        int rows = values.GetLength(0), cols = values.GetLength(1);
        var data = new double[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) data[r * cols + c] = values[r, c];
        return new(data, Shape.Matrix(rows, cols), requiresGrad);
    }

    /// <summary>A tensor of the given shape holding a copy of <paramref name="values"/>.</summary>
    public static Tensor FromValues(Shape shape, ReadOnlySpan<double> values, bool requiresGrad = false)
    {
        if (values.Length != shape.Size)
            throw new ArgumentException($"A tensor of shape {shape} needs {shape.Size} values, got {values.Length}.", nameof(values));
        return new(values.ToArray(), shape, requiresGrad);
    }

    public static Tensor Zeros(Shape shape, bool requiresGrad = false) => new(new double[shape.Size], shape, requiresGrad);

    public static Tensor Ones(Shape shape, bool requiresGrad = false) => Full(shape, 1.0, requiresGrad);

    public static Tensor Full(Shape shape, double value, bool requiresGrad = false)
    {
        var data = new double[shape.Size];
        data.AsSpan().Fill(value);
        return new(data, shape, requiresGrad);
    }

    /// <summary>Wraps <paramref name="data"/> WITHOUT copying; the caller keeps ownership (see <see cref="Storage"/>).</summary>
    internal static Tensor Wrap(double[] data, Shape shape, bool requiresGrad = false) => new(data, shape, requiresGrad);

    /// <summary>
    /// The result of an op. It joins the graph only when gradients are enabled and some input
    /// requires grad; otherwise it is a plain constant and the rule is dropped.
    /// </summary>
    private static Tensor Node(double[] data, Shape shape, string op, Tensor[] parents, BackwardRule backward)
    {
        if (!Autograd.IsGradEnabled) return new(data, shape);
        foreach (var p in parents)
            if (p.RequiresGrad) return new(data, shape, parents, backward, op);
        return new(data, shape);
    }

    // ---- graph bookkeeping ----------------------------------------------------------------

    /// <summary>Marks a leaf as requiring grad (PyTorch's <c>requires_grad_()</c>) and returns it.</summary>
    public Tensor RequireGrad()
    {
        if (!IsLeaf)
            throw new InvalidOperationException(
                $"RequireGrad() works on leaf tensors only; this one was made by '{Op}'. Call Detach() first to get a leaf.");
        RequiresGrad = true;
        return this;
    }

    /// <summary>The same values as a new leaf that does not require grad (shares storage).</summary>
    public Tensor Detach() => new(_data, Shape);

    /// <summary>Forgets the accumulated gradient (PyTorch's <c>grad = None</c>).</summary>
    public void ZeroGrad() => Grad = null;

    /// <summary>
    /// Gradients of this tensor with respect to every leaf that requires grad, ADDED to their
    /// <see cref="Grad"/>. Without <paramref name="gradient"/> this must be a scalar (the seed is 1).
    /// <paramref name="retainGraph"/> defaults to <paramref name="createGraph"/>, as in PyTorch.
    /// </summary>
    public void Backward(Tensor? gradient = null, bool? retainGraph = null, bool createGraph = false) =>
        Autograd.Run([this], gradient is null ? null : [gradient], inputs: null, retainGraph ?? createGraph, createGraph, allowUnused: true);

    /// <summary>Runs this node's rule; the engine calls it once per backward pass.</summary>
    internal Tensor?[] RunBackward(Tensor grad, ReadOnlySpan<bool> needs)
    {
        if (IsFreed || _backward is null)
            throw new InvalidOperationException(
                $"Trying to backward through the graph a second time (at '{Op}'), or to use saved values after they were freed. " +
                "Saved intermediate values of the graph are freed when you call Backward() or Autograd.Grad(). " +
                "Specify retainGraph: true on the first call if you need to backward through the graph a second time.");
        return _backward(grad, needs);
    }

    /// <summary>Drops the saved values (the rule's captures), as PyTorch does after a backward without retain_graph.</summary>
    internal void Free()
    {
        _backward = null;
        IsFreed = true;
    }

    // ---- reading values -------------------------------------------------------------------

    /// <summary>The value of a one-element tensor.</summary>
    public double Item()
    {
        if (Size != 1)
            throw new InvalidOperationException($"Item() needs a tensor with one element; this one has shape {Shape}. Index it first, e.g. t[0].");
        return _data[0];
    }

    public double[] ToArray() => (double[])_data.Clone();

    /// <summary>NumPy-like text with shortest round-trip numbers: <c>6</c>, <c>[6, 6]</c>, <c>[[1, 2], [3, 4]]</c>.</summary>
    public override string ToString()
    {
        if (Shape.Rank == 0) return Format(_data[0]);
        var text = new StringBuilder();
        if (Shape.Rank == 1) AppendRow(text, 0);
        else
        {
            text.Append('[');
            for (int r = 0; r < Shape.Rows; r++)
            {
                if (r > 0) text.Append(", ");
                AppendRow(text, r);
            }
            text.Append(']');
        }
        return text.ToString();
    }

    private void AppendRow(StringBuilder text, int row)
    {
        text.Append('[');
        for (int c = 0; c < Shape.Cols; c++)
        {
            if (c > 0) text.Append(", ");
            text.Append(Format(_data[row * Shape.Cols + c]));
        }
        text.Append(']');
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
