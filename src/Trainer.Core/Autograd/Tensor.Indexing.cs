using System.Runtime.CompilerServices;

namespace Trainer.Core.Autograd;

/// <summary>
/// Indexing and slicing, PyTorch style: <c>y[0]</c> (an element of a vector, a row of a matrix),
/// <c>m[i, j]</c>, <c>m[1..3]</c> (rows), <c>m[.., 2]</c> (a column as a vector), <c>m[1.., ..2]</c>.
/// Negative int indices count from the end, like Python; ranges take C#'s <c>^1</c>.
/// </summary>
/// <remarks>
/// Everything is one op on the 2-D view, a rectangular block (rows r0..r0+nr, cols c0..c0+nc).
/// Its rule scatters the gradient into zeros of the input's shape (<see cref="Embed"/>), and
/// Embed's rule is the block again, so slicing is differentiable to any order.
/// </remarks>
public sealed partial class Tensor
{
    /// <summary>Element i of a vector (a scalar), or row i of a matrix (a vector).</summary>
    [IndexerName("At")]   // NOTE: the default name, Item, is taken by Item() (PyTorch's .item())
    public Tensor this[int index] => Shape.Rank switch
    {
        1 => Block(0, 1, Normalize(index, Shape.Cols, 0), 1, Shape.Scalar),
        2 => Block(Normalize(index, Shape.Rows, 0), 1, 0, Shape.Cols, Shape.Vector(Shape.Cols)),
        _ => throw new IndexOutOfRangeException($"index {index}: a scalar (shape ()) cannot be indexed; use Item() to read its value."),
    };

    /// <summary>Element (row, col) of a matrix.</summary>
    [IndexerName("At")]
    public Tensor this[int row, int col]
    {
        get
        {
            RequireMatrix($"[{row}, {col}]");
            return Block(Normalize(row, Shape.Rows, 0), 1, Normalize(col, Shape.Cols, 1), 1, Shape.Scalar);
        }
    }

    /// <summary>A sub-vector of a vector, or a block of rows of a matrix.</summary>
    [IndexerName("At")]
    public Tensor this[Range range]
    {
        get
        {
            if (Shape.Rank == 1)
            {
                var (start, length) = Bounds(range, Shape.Cols, 0);
                return Block(0, 1, start, length, Shape.Vector(length));
            }
            RequireMatrix($"[{range}]");
            var (r0, nr) = Bounds(range, Shape.Rows, 0);
            return Block(r0, nr, 0, Shape.Cols, Shape.Matrix(nr, Shape.Cols));
        }
    }

    /// <summary>A block of a matrix.</summary>
    [IndexerName("At")]
    public Tensor this[Range rows, Range cols]
    {
        get
        {
            RequireMatrix($"[{rows}, {cols}]");
            var (r0, nr) = Bounds(rows, Shape.Rows, 0);
            var (c0, nc) = Bounds(cols, Shape.Cols, 1);
            return Block(r0, nr, c0, nc, Shape.Matrix(nr, nc));
        }
    }

    /// <summary>Part of one row of a matrix, as a vector.</summary>
    [IndexerName("At")]
    public Tensor this[int row, Range cols]
    {
        get
        {
            RequireMatrix($"[{row}, {cols}]");
            var (c0, nc) = Bounds(cols, Shape.Cols, 1);
            return Block(Normalize(row, Shape.Rows, 0), 1, c0, nc, Shape.Vector(nc));
        }
    }

    /// <summary>Part of one column of a matrix, as a vector (<c>m[.., j]</c>).</summary>
    [IndexerName("At")]
    public Tensor this[Range rows, int col]
    {
        get
        {
            RequireMatrix($"[{rows}, {col}]");
            var (r0, nr) = Bounds(rows, Shape.Rows, 0);
            return Block(r0, nr, Normalize(col, Shape.Cols, 1), 1, Shape.Vector(nr));
        }
    }

    /// <summary>The block (r0, nr, c0, nc) of the 2-D view, given the shape <paramref name="shape"/>.</summary>
    private Tensor Block(int r0, int nr, int c0, int nc, Shape shape)
    {
        var x = this;
        var data = new double[nr * nc];
        for (int r = 0; r < nr; r++)
            _data.AsSpan((r0 + r) * Shape.Cols + c0, nc).CopyTo(data.AsSpan(r * nc, nc));
        return Node(data, shape, "index", [x], (g, need) => [g.Embed(x.Shape, r0, nr, c0, nc)]);
    }

    /// <summary>Zeros of <paramref name="shape"/> with this tensor's values written as the nr x nc block at (r0, c0).</summary>
    /// <remarks>NOTE: the block's extent is passed in, not read from this tensor's shape: a column slice is a (nr,) vector whose 2-D view is a row.</remarks>
    private Tensor Embed(Shape shape, int r0, int nr, int c0, int nc)
    {
        var x = this;
        var data = new double[shape.Size];
        for (int r = 0; r < nr; r++)
            _data.AsSpan(r * nc, nc).CopyTo(data.AsSpan((r0 + r) * shape.Cols + c0, nc));
        return Node(data, shape, "index_backward", [x], (g, need) => [g.Block(r0, nr, c0, nc, x.Shape)]);
    }

    private int Normalize(int index, int length, int dim)
    {
        int i = index < 0 ? index + length : index;
        if (i < 0 || i >= length)
            throw new IndexOutOfRangeException($"index {index} is out of bounds for dimension {dim} with size {length} (tensor of shape {Shape}).");
        return i;
    }

    private (int Start, int Length) Bounds(Range range, int length, int dim)
    {
        int start = range.Start.GetOffset(length), end = range.End.GetOffset(length);
        if (start < 0 || end > length || start > end)
            throw new IndexOutOfRangeException($"slice {range} is out of bounds for dimension {dim} with size {length} (tensor of shape {Shape}).");
        return (start, end - start);
    }

    private void RequireMatrix(string what)
    {
        if (Shape.Rank != 2)
            throw new IndexOutOfRangeException($"{what}: too many indices for a tensor of shape {Shape}; two indices need a matrix.");
    }
}
