using System.Numerics.Tensors;
using Trainer.Core.Linalg;

namespace Trainer.Core.Autograd;

/// <summary>
/// Element-wise arithmetic with broadcasting: add, sub, mul, div, neg, pow, and the
/// BroadcastTo / SumTo pair that moves gradients between a broadcast result and its inputs.
/// </summary>
/// <remarks>
/// Every binary rule ends in <c>SumTo(input.Shape)</c>: an input that was broadcast was used many
/// times, so its gradient is the sum over the copies (the "reduce back to the input shape" rule).
/// </remarks>
public sealed partial class Tensor
{
    private enum BinaryOp { Add, Sub, Mul, Div }

    public static Tensor operator +(Tensor a, Tensor b)
    {
        var shape = Shape.Broadcast(a.Shape, b.Shape, "add");
        return Node(Binary(BinaryOp.Add, a, b, shape), shape, "add", [a, b], (g, need) =>
        [
            need[0] ? g.SumTo(a.Shape) : null,
            need[1] ? g.SumTo(b.Shape) : null,
        ]);
    }

    public static Tensor operator -(Tensor a, Tensor b)
    {
        var shape = Shape.Broadcast(a.Shape, b.Shape, "sub");
        return Node(Binary(BinaryOp.Sub, a, b, shape), shape, "sub", [a, b], (g, need) =>
        [
            need[0] ? g.SumTo(a.Shape) : null,
            need[1] ? (-g).SumTo(b.Shape) : null,
        ]);
    }

    public static Tensor operator *(Tensor a, Tensor b)
    {
        var shape = Shape.Broadcast(a.Shape, b.Shape, "mul");
        return Node(Binary(BinaryOp.Mul, a, b, shape), shape, "mul", [a, b], (g, need) =>
        [
            need[0] ? (g * b).SumTo(a.Shape) : null,
            need[1] ? (g * a).SumTo(b.Shape) : null,
        ]);
    }

    public static Tensor operator /(Tensor a, Tensor b)
    {
        var shape = Shape.Broadcast(a.Shape, b.Shape, "div");
        return Node(Binary(BinaryOp.Div, a, b, shape), shape, "div", [a, b], (g, need) =>
        [
            need[0] ? (g / b).SumTo(a.Shape) : null,
            need[1] ? (-g * a / (b * b)).SumTo(b.Shape) : null,   // d(a/b)/db = -a/b²
        ]);
    }

    public static Tensor operator -(Tensor a)
    {
        var data = new double[a.Size];
        TensorPrimitives.Negate(a._data, data);
        return Node(data, a.Shape, "neg", [a], (g, need) => [-g]);
    }

    // Scalars are constants that broadcast; they never need a gradient.
    public static Tensor operator +(Tensor a, double b) => a + Scalar(b);
    public static Tensor operator +(double a, Tensor b) => Scalar(a) + b;
    public static Tensor operator -(Tensor a, double b) => a - Scalar(b);
    public static Tensor operator -(double a, Tensor b) => Scalar(a) - b;
    public static Tensor operator *(Tensor a, double b) => a * Scalar(b);
    public static Tensor operator *(double a, Tensor b) => Scalar(a) * b;
    public static Tensor operator /(Tensor a, double b) => a / Scalar(b);
    public static Tensor operator /(double a, Tensor b) => Scalar(a) / b;

    /// <summary>a^p element-wise, for a constant exponent p.</summary>
    public Tensor Pow(double exponent)
    {
        var a = this;
        var data = new double[Size];
        if (exponent == 2.0) TensorPrimitives.Multiply(_data, _data, data);   // exact, and the common case
        else if (exponent == 1.0) _data.CopyTo(data, 0);
        else TensorPrimitives.Pow(_data, exponent, data);
        return Node(data, Shape, "pow", [a], (g, need) =>
        [
            // NOTE: p = 0 has derivative 0 everywhere; p·a^(p-1) would give 0·inf = NaN at a = 0.
            exponent == 0.0 ? Zeros(a.Shape) : g * (exponent * a.Pow(exponent - 1.0)),
        ]);
    }

    /// <summary>Repeats this tensor along its size-1 (or missing) dimensions to <paramref name="shape"/>.</summary>
    public Tensor BroadcastTo(Shape shape)
    {
        if (shape == Shape) return this;
        if (!Shape.BroadcastsTo(shape))
            throw new ArgumentException($"broadcast_to: a tensor of shape {Shape} cannot be broadcast to shape {shape}; each dimension must be equal or 1.");
        var a = this;
        var data = Binary(BinaryOp.Add, this, Zeros(Shape.Scalar), shape);
        return Node(data, shape, "broadcast_to", [a], (g, need) => [g.SumTo(a.Shape)]);
    }

    /// <summary>
    /// Sums this tensor down to <paramref name="shape"/>, a shape that broadcasts to this one:
    /// the adjoint of <see cref="BroadcastTo"/>, and how every binary rule reduces its gradient.
    /// </summary>
    public Tensor SumTo(Shape shape)
    {
        if (shape == Shape) return this;
        if (!shape.BroadcastsTo(Shape))
            throw new ArgumentException($"sum_to: a tensor of shape {Shape} cannot be summed to shape {shape}; the target must broadcast to the source.");
        var a = this;
        var data = SumKernel(shape);
        return Node(data, shape, "sum_to", [a], (g, need) => [g.BroadcastTo(a.Shape)]);
    }

    /// <summary>The values of this tensor summed down to <paramref name="shape"/> (already checked to broadcast to it).</summary>
    private double[] SumKernel(Shape shape)
    {
        int rows = Shape.Rows, cols = Shape.Cols;
        var data = new double[shape.Size];
        // FixedOrder, not TensorPrimitives.Sum: the bits of a vectorized sum follow the CPU's vector width.
        if (shape.Rows == 1 && shape.Cols == 1) data[0] = FixedOrder.Sum(_data);
        else if (shape.Rows == 1)   // sum over rows, row by row in order
            for (int r = 0; r < rows; r++) TensorPrimitives.Add(data, _data.AsSpan(r * cols, cols), data);
        else if (shape.Cols == 1 && cols != 1)
            for (int r = 0; r < rows; r++) data[r] = FixedOrder.Sum(_data.AsSpan(r * cols, cols));
        else _data.CopyTo(data, 0);   // nothing to sum: only the rank differs
        return data;
    }

    /// <summary>The forward kernel of every broadcasting binary op; <paramref name="shape"/> is the broadcast shape.</summary>
    private static double[] Binary(BinaryOp op, Tensor a, Tensor b, Shape shape)
    {
        var result = new double[shape.Size];
        int rows = shape.Rows, cols = shape.Cols;
        if (a.Size == result.Length && b.Size == result.Length)
        {
            Apply(op, a._data, b._data, result);
            return result;
        }
        // Strides of 0 repeat a row (or a column) of a broadcast operand.
        int aRow = a.Shape.Rows == 1 ? 0 : a.Shape.Cols, bRow = b.Shape.Rows == 1 ? 0 : b.Shape.Cols;
        bool aScalarRow = a.Shape.Cols == 1 && cols != 1, bScalarRow = b.Shape.Cols == 1 && cols != 1;
        for (int r = 0; r < rows; r++)
        {
            var dst = result.AsSpan(r * cols, cols);
            if (aScalarRow && bScalarRow) dst.Fill(Apply(op, a._data[r * aRow], b._data[r * bRow]));
            else if (aScalarRow) ApplyLeftScalar(op, a._data[r * aRow], b._data.AsSpan(r * bRow, cols), dst);
            else if (bScalarRow) ApplyRightScalar(op, a._data.AsSpan(r * aRow, cols), b._data[r * bRow], dst);
            else Apply(op, a._data.AsSpan(r * aRow, cols), b._data.AsSpan(r * bRow, cols), dst);
        }
        return result;
    }

    private static void Apply(BinaryOp op, ReadOnlySpan<double> x, ReadOnlySpan<double> y, Span<double> dst)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(x, y, dst); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(x, y, dst); break;
            case BinaryOp.Mul: TensorPrimitives.Multiply(x, y, dst); break;
            default: TensorPrimitives.Divide(x, y, dst); break;
        }
    }

    private static void ApplyRightScalar(BinaryOp op, ReadOnlySpan<double> x, double y, Span<double> dst)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(x, y, dst); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(x, y, dst); break;
            case BinaryOp.Mul: TensorPrimitives.Multiply(x, y, dst); break;
            default: TensorPrimitives.Divide(x, y, dst); break;
        }
    }

    private static void ApplyLeftScalar(BinaryOp op, double x, ReadOnlySpan<double> y, Span<double> dst)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(y, x, dst); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(x, y, dst); break;
            case BinaryOp.Mul: TensorPrimitives.Multiply(y, x, dst); break;
            default: TensorPrimitives.Divide(x, y, dst); break;
        }
    }

    private static double Apply(BinaryOp op, double x, double y) => op switch
    {
        BinaryOp.Add => x + y,
        BinaryOp.Sub => x - y,
        BinaryOp.Mul => x * y,
        _ => x / y,
    };
}
