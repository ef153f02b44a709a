namespace Trainer.Core.Autograd;

/// <summary>
/// The shape of a <see cref="Tensor"/>: a scalar <c>()</c>, a vector <c>(n,)</c> or a matrix
/// <c>(rows, cols)</c>. Every shape also has a 2-D view (scalar = 1x1, vector = 1xn, a row), which
/// is how storage is laid out (row-major) and how broadcasting lines dimensions up.
/// </summary>
/// <remarks>
/// Broadcasting follows NumPy/PyTorch: shapes are aligned from the right and each dimension must
/// be equal or 1. With rank at most 2 that is exactly "compare the 2-D views", because a vector
/// (n,) already sits in the last dimension as a 1xn row. A column vector is the matrix (n, 1).
/// </remarks>
public readonly record struct Shape
{
    private Shape(int rank, int rows, int cols)
    {
        Rank = rank;
        Rows = rows;
        Cols = cols;
    }

    public static Shape Scalar { get; } = new(0, 1, 1);

    public static Shape Vector(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return new(1, 1, length);
    }

    public static Shape Matrix(int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        return new(2, rows, cols);
    }

    /// <summary>0 for a scalar, 1 for a vector, 2 for a matrix.</summary>
    public int Rank { get; }

    /// <summary>Rows of the 2-D view (1 for scalars and vectors).</summary>
    public int Rows { get; }

    /// <summary>Columns of the 2-D view (the length, for a vector).</summary>
    public int Cols { get; }

    /// <summary>Number of elements.</summary>
    public int Size => Rows * Cols;

    /// <summary>Size of dimension <paramref name="axis"/> (0 or 1 for a matrix, 0 for a vector).</summary>
    public int this[int axis] => Rank switch
    {
        2 when axis == 0 => Rows,
        2 when axis == 1 => Cols,
        1 when axis == 0 => Cols,
        _ => throw new ArgumentOutOfRangeException(nameof(axis), $"Dimension {axis} is out of range for a tensor of shape {this} (rank {Rank})."),
    };

    /// <summary>
    /// The shape two operands broadcast to, or an error naming both shapes. <paramref name="op"/>
    /// names the operation in the message.
    /// </summary>
    public static Shape Broadcast(Shape a, Shape b, string op)
    {
        if (a == b) return a;
        int rows = Join(a.Rows, b.Rows), cols = Join(a.Cols, b.Cols);
        if (rows < 0 || cols < 0)
            throw new ArgumentException(
                $"{op}: shapes {a} and {b} cannot be broadcast together; aligned from the right, each dimension must be equal or 1.");
        int rank = Math.Max(a.Rank, b.Rank);
        return rank switch { 0 => Scalar, 1 => Vector(cols), _ => Matrix(rows, cols) };

        static int Join(int x, int y) => x == y ? x : x == 1 ? y : y == 1 ? x : -1;
    }

    /// <summary>True when a tensor of this shape can be broadcast to <paramref name="target"/> without changing the target.</summary>
    public bool BroadcastsTo(Shape target) =>
        Rank <= target.Rank && (Rows == target.Rows || Rows == 1) && (Cols == target.Cols || Cols == 1);

    /// <summary>Python-style: <c>()</c>, <c>(3,)</c>, <c>(2, 3)</c>.</summary>
    public override string ToString() => Rank switch
    {
        0 => "()",
        1 => $"({Cols},)",
        _ => $"({Rows}, {Cols})",
    };
}
