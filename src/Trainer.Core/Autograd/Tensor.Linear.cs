using Trainer.Core.Linalg;

namespace Trainer.Core.Autograd;

/// <summary>Matrix product (on the core's GEMM kernels), transpose and reshape.</summary>
public sealed partial class Tensor
{
    /// <summary>The matrix product this · <paramref name="other"/>.</summary>
    public Tensor MatMul(Tensor other) => MatMul(this, other);

    /// <summary>
    /// C = op(A) · op(B), where op transposes when asked, computed by one GEMM call with no
    /// transposed copy: <c>MatMul(x, w, transposeB: true)</c> is PyTorch's <c>x @ w.T</c> (a Linear layer).
    /// </summary>
    /// <remarks>
    /// Legend: op(A) is (m, k), op(B) is (k, n), C and its gradient G are (m, n). The rules are
    /// matrix products again (so they are differentiable), with the transposes folded into flags:
    /// <code>
    /// dA = G · op(B)ᵀ     or, when A was transposed, op(B) · Gᵀ
    /// dB = op(A)ᵀ · G     or, when B was transposed, Gᵀ · op(A)
    /// </code>
    /// </remarks>
    public static Tensor MatMul(Tensor a, Tensor b, bool transposeA = false, bool transposeB = false, IBlas? blas = null) =>
        MatMul(a, b, transposeA, transposeB, blas, buffers: null);

    /// <summary>As above; the result and the products in its rule take their storage from <paramref name="buffers"/> when given.</summary>
    internal static Tensor MatMul(Tensor a, Tensor b, bool transposeA, bool transposeB, IBlas? blas, StepBuffers? buffers)
    {
        if (a.Shape.Rank != 2 || b.Shape.Rank != 2)
            throw new ArgumentException(
                $"matmul: shapes {a.Shape} and {b.Shape}: both operands must be matrices; Reshape a vector to (1, n) or (n, 1) first.");
        int m = transposeA ? a.Shape.Cols : a.Shape.Rows, k = transposeA ? a.Shape.Rows : a.Shape.Cols;
        int kb = transposeB ? b.Shape.Cols : b.Shape.Rows, n = transposeB ? b.Shape.Rows : b.Shape.Cols;
        if (k != kb)
            throw new ArgumentException(
                $"matmul: shapes {Describe(a.Shape, transposeA)} and {Describe(b.Shape, transposeB)} cannot be multiplied; the inner dimensions {k} and {kb} must be equal.");
        blas ??= Blas.Default;
        // GEMM with beta = 0 overwrites every element, so the buffer need not be zeroed first.
        var data = k == 0 ? new double[m * n] : buffers?.Rent(m * n) ?? GC.AllocateUninitializedArray<double>(m * n);
        if (k > 0)
            blas.Gemm(transposeA ? Transpose.Yes : Transpose.No, transposeB ? Transpose.Yes : Transpose.No, m, n, k,
                1.0, a._data, a.Shape.Cols, b._data, b.Shape.Cols, 0.0, data, n);
        return Node(data, Shape.Matrix(m, n), "matmul", [a, b], (g, need) =>
        [
            need[0] ? (transposeA ? MatMul(b, g, transposeB, true, blas, buffers) : MatMul(g, b, false, !transposeB, blas, buffers)) : null,
            need[1] ? (transposeB ? MatMul(g, a, true, transposeA, blas, buffers) : MatMul(a, g, !transposeA, false, blas, buffers)) : null,
        ]);
    }

    /// <summary>The transpose of a matrix (a copy); scalars and vectors are returned as they are, as in PyTorch.</summary>
    public Tensor T
    {
        get
        {
            if (Shape.Rank < 2) return this;
            var x = this;
            int rows = Shape.Rows, cols = Shape.Cols;
            var data = new double[Size];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) data[c * rows + r] = _data[r * cols + c];
            return Node(data, Shape.Matrix(cols, rows), "transpose", [x], (g, need) => [g.T]);
        }
    }

    /// <summary>The same values in another shape with the same number of elements (row-major order is kept).</summary>
    public Tensor Reshape(Shape shape)
    {
        if (shape == Shape) return this;
        if (shape.Size != Size)
            throw new ArgumentException($"reshape: a tensor of shape {Shape} ({Size} elements) cannot be reshaped to {shape} ({shape.Size} elements).");
        var x = this;
        // Values are immutable, so the reshaped tensor can share storage.
        return Node(_data, shape, "reshape", [x], (g, need) => [g.Reshape(x.Shape)]);
    }

    private static string Describe(Shape shape, bool transposed) => transposed ? $"{shape}ᵀ" : shape.ToString();
}
