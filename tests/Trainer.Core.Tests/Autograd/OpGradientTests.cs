namespace Trainer.Core.Tests.Autograd;

using Trainer.Core.Autograd;
using static TestTensors;

/// <summary>
/// Every op's first derivative against central finite differences of its value, and its second
/// derivative (a Hessian-vector product by double backward) against finite differences of the
/// first-order gradient.
/// </summary>
/// <remarks>
/// Each op's output is reduced to a scalar as L = Σ w ⊙ F + ½ Σ F ⊙ F with fixed random w: the
/// quadratic term makes the Hessian non-zero even for linear ops, so their rules are
/// differentiated too (double backward runs every rule on graph tensors).
/// </remarks>
public sealed class OpGradientTests
{
    private sealed record Op(Shape[] Inputs, Func<Tensor[], Tensor> F, Domain Domain = Domain.Any);

    private static readonly Shape M34 = Shape.Matrix(3, 4), V4 = Shape.Vector(4), S = Shape.Scalar;

    private static readonly Dictionary<string, Op> Ops = new()
    {
        ["add"] = new([M34, M34], t => t[0] + t[1]),
        ["add_broadcast_row_vector"] = new([M34, V4], t => t[0] + t[1]),
        ["add_broadcast_column"] = new([M34, Shape.Matrix(3, 1)], t => t[1] + t[0]),
        ["add_broadcast_scalar_tensor"] = new([M34, S], t => t[0] + t[1]),
        ["add_double"] = new([M34], t => 1.5 + t[0] + 2.0),
        ["sub"] = new([M34, M34], t => t[0] - t[1]),
        ["sub_broadcast_row_matrix"] = new([M34, Shape.Matrix(1, 4)], t => t[0] - t[1]),
        ["sub_double"] = new([V4], t => 1.0 - t[0] - 0.5),
        ["mul"] = new([M34, M34], t => t[0] * t[1]),
        ["mul_broadcast_outer"] = new([Shape.Matrix(3, 1), Shape.Matrix(1, 4)], t => t[0] * t[1]),
        ["mul_double"] = new([M34], t => 3.0 * t[0] * -0.5),
        ["div"] = new([M34, M34], t => t[0] / t[1], Domain.Positive),
        ["div_broadcast_vector"] = new([M34, V4], t => t[0] / t[1], Domain.Positive),
        ["div_double"] = new([V4], t => 2.0 / t[0] / 4.0, Domain.Positive),
        ["neg"] = new([M34], t => -t[0]),
        ["pow_2"] = new([M34], t => t[0].Pow(2)),
        ["pow_3"] = new([M34], t => t[0].Pow(3)),
        ["pow_half"] = new([V4], t => t[0].Pow(0.5), Domain.Positive),
        ["pow_minus_1_5"] = new([V4], t => t[0].Pow(-1.5), Domain.Positive),
        ["pow_0"] = new([V4], t => t[0].Pow(0) * t[0]),
        ["matmul"] = new([M34, Shape.Matrix(4, 2)], t => t[0].MatMul(t[1])),
        ["matmul_transpose_a"] = new([Shape.Matrix(4, 3), Shape.Matrix(4, 2)], t => Tensor.MatMul(t[0], t[1], transposeA: true)),
        ["matmul_transpose_b"] = new([M34, Shape.Matrix(2, 4)], t => Tensor.MatMul(t[0], t[1], transposeB: true)),
        ["matmul_transpose_both"] = new([Shape.Matrix(4, 3), Shape.Matrix(2, 4)], t => Tensor.MatMul(t[0], t[1], true, true)),
        ["transpose"] = new([M34], t => t[0].T),
        ["sum"] = new([M34], t => t[0].Sum()),
        ["sum_axis_0"] = new([M34], t => t[0].Sum(0)),
        ["sum_axis_1"] = new([M34], t => t[0].Sum(1)),
        ["sum_axis_0_keepdim"] = new([M34], t => t[0].Sum(0, keepDim: true)),
        ["sum_axis_1_keepdim"] = new([M34], t => t[0].Sum(1, keepDim: true)),
        ["sum_vector_axis_0"] = new([V4], t => t[0].Sum(0)),
        ["mean"] = new([M34], t => t[0].Mean()),
        ["mean_axis_0"] = new([M34], t => t[0].Mean(0)),
        ["mean_axis_1"] = new([M34], t => t[0].Mean(1)),
        ["exp"] = new([M34], t => t[0].Exp()),
        ["log"] = new([M34], t => t[0].Log(), Domain.Positive),
        ["sigmoid"] = new([M34], t => t[0].Sigmoid()),
        ["tanh"] = new([M34], t => t[0].Tanh()),
        ["relu"] = new([M34], t => t[0].Relu(), Domain.AwayFromZero),
        ["index_vector_element"] = new([V4], t => t[0][1]),
        ["index_negative"] = new([V4], t => t[0][-1]),
        ["index_matrix_row"] = new([M34], t => t[0][1]),
        ["index_matrix_element"] = new([M34], t => t[0][1, 2]),
        ["slice_rows"] = new([M34], t => t[0][1..3]),
        ["slice_block"] = new([M34], t => t[0][1.., ..2]),
        ["slice_column"] = new([M34], t => t[0][.., 2]),
        ["slice_row_part"] = new([M34], t => t[0][0, 1..]),
        ["slice_vector"] = new([V4], t => t[0][1..^1]),
        ["reshape"] = new([M34], t => t[0].Reshape(Shape.Matrix(2, 6))),
        ["broadcast_to"] = new([V4], t => t[0].BroadcastTo(M34)),
        ["sum_to"] = new([M34], t => t[0].SumTo(V4)),
    };

    public static TheoryData<string> OpNames => [.. Ops.Keys];

    [Theory]
    [MemberData(nameof(OpNames))]
    public void Gradient_MatchesFiniteDifferences(string op)
    {
        var (values, loss) = Setup(op);
        var analytic = Gradients(loss, values);
        for (int i = 0; i < values.Length; i++)
        {
            var all = Enumerable.Range(0, values[i].Length).ToArray();
            var numeric = GradientCheck.Numeric(p => Value(loss, Replace(values, i, p)), values[i], all, h: 1e-6);
            Close(numeric, analytic[i], 1e-7, $"{op}: d L / d input {i}");
        }
    }

    [Theory]
    [MemberData(nameof(OpNames))]
    public void HessianVectorProduct_MatchesFiniteDifferencesOfTheGradient(string op)
    {
        var (values, loss) = Setup(op);
        var v = values.Select((x, i) => Normals(x.Length, 1000 + i)).ToArray();
        var hv = HessianVectorProduct(loss, values, v);
        // (∇L(p + h v) - ∇L(p - h v)) / 2h ≈ H v
        const double h = 1e-5;
        var plus = Gradients(loss, Shift(values, v, h));
        var minus = Gradients(loss, Shift(values, v, -h));
        for (int i = 0; i < values.Length; i++)
        {
            var numeric = plus[i].Zip(minus[i], (a, b) => (a - b) / (2 * h)).ToArray();
            Close(numeric, hv[i], 1e-6, $"{op}: (H v) for input {i}");
        }
    }

    /// <summary>The op's input shapes and values, and L = Σ w ⊙ F + ½ Σ F ⊙ F as a function of the input values.</summary>
    private static (double[][] Values, Func<double[][], bool, (Tensor Loss, Tensor[] Leaves)> Loss) Setup(string op)
    {
        var spec = Ops[op];
        var values = spec.Inputs.Select((s, i) => Normals(s.Size, 17 * (i + 1), spec.Domain)).ToArray();
        var outputShape = spec.F([.. spec.Inputs.Select((s, i) => Tensor.FromValues(s, values[i]))]).Shape;
        var w = Random(outputShape, 99);
        return (values, (inputs, requiresGrad) =>
        {
            Tensor[] leaves = [.. spec.Inputs.Select((s, i) => Tensor.FromValues(s, inputs[i], requiresGrad))];
            var f = spec.F(leaves);
            return ((w * f).Sum() + 0.5 * (f * f).Sum(), leaves);
        });
    }

    private static double Value(Func<double[][], bool, (Tensor Loss, Tensor[] Leaves)> loss, double[][] values)
    {
        using var noGrad = Autograd.NoGrad();
        return loss(values, false).Loss.Item();
    }

    private static double[][] Gradients(Func<double[][], bool, (Tensor Loss, Tensor[] Leaves)> loss, double[][] values)
    {
        var (l, leaves) = loss(values, true);
        return [.. Autograd.Grad([l], leaves).Select(g => g!.ToArray())];
    }

    private static double[][] HessianVectorProduct(Func<double[][], bool, (Tensor Loss, Tensor[] Leaves)> loss, double[][] values, double[][] v)
    {
        var (l, leaves) = loss(values, true);
        var grads = Autograd.Grad([l], leaves, createGraph: true);
        var dot = grads.Select((g, i) => (g! * Tensor.FromValues(g!.Shape, v[i])).Sum()).Aggregate((a, b) => a + b);
        var hv = Autograd.Grad([dot], leaves, allowUnused: true);
        return [.. hv.Select((g, i) => g?.ToArray() ?? new double[values[i].Length])];
    }

    private static double[][] Replace(double[][] values, int index, double[] replacement) =>
        [.. values.Select((x, i) => i == index ? replacement : x)];

    private static double[][] Shift(double[][] values, double[][] direction, double h) =>
        [.. values.Select((x, i) => x.Zip(direction[i], (a, d) => a + h * d).ToArray())];
}
