using System.Numerics.Tensors;
using Trainer.Core.Linalg;

namespace Trainer.Core.Autograd;

/// <summary>Sum and mean, over everything or along one axis (NumPy/PyTorch axis numbering).</summary>
/// <remarks>
/// Along an axis the reduced dimension is dropped, as in <c>x.sum(dim)</c>: a (rows, cols) matrix
/// summed along axis 0 gives a (cols,) vector, along axis 1 a (rows,) vector; a vector summed along
/// axis 0 gives a scalar. keepDim keeps it as size 1 instead: (1, cols) or (rows, 1).
/// Backward of a sum is its gradient broadcast back over the summed dimension.
/// </remarks>
public sealed partial class Tensor
{
    /// <summary>The sum of all elements, a scalar.</summary>
    public Tensor Sum()
    {
        var x = this;
        return Node([FixedOrder.Sum(_data)], Shape.Scalar, "sum", [x], (g, need) => [g.BroadcastTo(x.Shape)]);
    }

    /// <summary>The mean of all elements, a scalar.</summary>
    public Tensor Mean() => Sum() / Size;

    /// <summary>Sums along <paramref name="axis"/> (0 = down the rows, 1 = along each row).</summary>
    public Tensor Sum(int axis, bool keepDim = false)
    {
        var kept = KeptShape(axis, "sum");
        var x = this;
        var summed = SumKernel(kept);
        var shape = keepDim ? kept : Reduced(axis);
        return Node(summed, shape, "sum_axis", [x], (g, need) => [g.Reshape(kept).BroadcastTo(x.Shape)]);
    }

    /// <summary>Means along <paramref name="axis"/>; see <see cref="Sum(int, bool)"/>.</summary>
    public Tensor Mean(int axis, bool keepDim = false) => Sum(axis, keepDim) / Shape[axis];

    /// <summary>The shape a sum along <paramref name="axis"/> has with keepDim (size 1 in that dimension, same rank).</summary>
    private Shape KeptShape(int axis, string op)
    {
        if (Shape.Rank == 0 || axis < 0 || axis >= Shape.Rank)
            throw new ArgumentOutOfRangeException(nameof(axis),
                $"{op}: axis {axis} is out of range for a tensor of shape {Shape}; allowed: {(Shape.Rank == 0 ? "none (use Sum() on a scalar)" : $"0 to {Shape.Rank - 1}")}.");
        if (Shape.Rank == 1) return Shape.Vector(1);
        return axis == 0 ? Shape.Matrix(1, Shape.Cols) : Shape.Matrix(Shape.Rows, 1);
    }

    private Shape Reduced(int axis) => Shape.Rank == 1 ? Shape.Scalar : Shape.Vector(axis == 0 ? Shape.Cols : Shape.Rows);
}
