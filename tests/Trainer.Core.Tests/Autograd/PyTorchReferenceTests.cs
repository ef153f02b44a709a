namespace Trainer.Core.Tests.Autograd;

using System.Text.Json;
using Trainer.Core.Autograd;

/// <summary>
/// Composite expressions against values recorded from PyTorch 1.13 by
/// tests/reference/autograd/make_torch_values.py: the value, the gradient with respect to every
/// input, and a Hessian-vector product (double backward; triple for the cases that already use
/// createGraph inside).
/// </summary>
public sealed class PyTorchReferenceTests
{
    /// <summary>The same expressions as the Python script, by case name; inputs in the order recorded.</summary>
    private static readonly Dictionary<string, Func<Tensor[], Tensor>> Expressions = new()
    {
        ["seed_example"] = t =>
        {
            var x = t[0];
            var y = x.Pow(2);
            var h1 = Autograd.Grad(y[0], x, retainGraph: true, createGraph: true);
            var h2 = Autograd.Grad(y[1], x, retainGraph: true, createGraph: true);
            return y.Mean() + (h1 - h2).Mean();
        },
        ["mlp_sigmoid_sse"] = t =>
        {
            var (x, w1, b1, w2, y) = (t[0], t[1], t[2], t[3], t[4]);
            var hidden = (Tensor.MatMul(x, w1, transposeB: true) + b1).Sigmoid();   // x @ w1.T + b1
            return (Tensor.MatMul(hidden, w2, transposeB: true) - y).Pow(2).Sum();
        },
        ["tanh_div_mean_axis"] = t => (t[0].Tanh() / (1.0 + t[1].Exp())).Mean(0).Pow(3).Sum(),
        ["logsumexp_index"] = t => (t[0].Exp().Sum(1).Log() - t[0][.., 0]).Mean(),
        ["relu_slices_transpose"] = t =>
        {
            var m = t[0];
            return (m.Relu()[1.., ..2] * m[0, ..2]).Sum() + m.T.MatMul(m)[0, 1] + m[.., 2].Pow(3).Sum();
        },
        ["broadcast_column_row_scalar"] = t =>
        {
            var (p, q, r) = (t[0], t[1], t[2]);
            return ((p * q - r) / (2.0 + q.Pow(2)) - p).Sum() * 0.5 + (r.Sum(0, keepDim: true) * p).Mean();
        },
        ["powers_and_log"] = t => (-t[0].Pow(0.5) + t[0].Pow(-1.5) - t[0].Log() + 3.0 / t[0]).Mean(),
        ["gradient_penalty"] = t =>
        {
            var (x, w1, w2, y) = (t[0], t[1], t[2], t[3]);
            var sse = (Tensor.MatMul(Tensor.MatMul(x, w1, transposeB: true).Tanh(), w2, transposeB: true) - y).Pow(2).Sum();
            var gx = Autograd.Grad(sse, x, createGraph: true);
            return sse + 0.3 * gx.Pow(2).Sum();
        },
    };

    internal sealed record Case(string Name, Dictionary<string, Shape> Shapes, Dictionary<string, double[]> Inputs, double Value,
        Dictionary<string, double[]> Grad, Dictionary<string, double[]> V, Dictionary<string, double[]> Hvp);

    public static TheoryData<string> CaseNames => [.. Load().Keys];

    [Fact]
    public void EveryRecordedCase_HasAnExpression() =>
        Assert.Equal(Load().Keys.Order(), Expressions.Keys.Order());

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void ValueGradientAndHessianVectorProduct_MatchPyTorch(string name)
    {
        var c = Load()[name];
        var names = c.Inputs.Keys.ToArray();
        Tensor[] leaves = [.. names.Select(k => Tensor.FromValues(c.Shapes[k], c.Inputs[k], requiresGrad: true))];

        var value = Expressions[name](leaves);
        Assert.True(Math.Abs(value.Item() - c.Value) <= 1e-12 * Math.Max(1, Math.Abs(c.Value)), $"{name}: value {value.Item():R}, PyTorch {c.Value:R}");

        var grads = Autograd.Grad([value], leaves, createGraph: true, allowUnused: true);
        for (int i = 0; i < names.Length; i++)
            TestTensors.Close(c.Grad[names[i]], grads[i]?.ToArray() ?? new double[leaves[i].Size], 1e-12, $"{name}: grad {names[i]}");

        var dot = grads.Select((g, i) => g is null ? Tensor.Scalar(0) : (g * Tensor.FromValues(g.Shape, c.V[names[i]])).Sum()).Aggregate((a, b) => a + b);
        var hvp = Autograd.Grad([dot], leaves, allowUnused: true);
        for (int i = 0; i < names.Length; i++)
            TestTensors.Close(c.Hvp[names[i]], hvp[i]?.ToArray() ?? new double[leaves[i].Size], 1e-12, $"{name}: H·v {names[i]}");
    }

    internal static Dictionary<string, Case> Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "reference", "autograd", "torch_values.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var cases = new Dictionary<string, Case>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var shapes = new Dictionary<string, Shape>();
            var inputs = new Dictionary<string, double[]>();
            foreach (var input in c.GetProperty("inputs").EnumerateObject())
            {
                var dims = input.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
                shapes[input.Name] = dims.Length switch { 0 => Shape.Scalar, 1 => Shape.Vector(dims[0]), _ => Shape.Matrix(dims[0], dims[1]) };
                inputs[input.Name] = Values(input.Value.GetProperty("values"));
            }
            var name = c.GetProperty("name").GetString()!;
            cases[name] = new Case(name, shapes, inputs, c.GetProperty("value").GetDouble(),
                Map(c.GetProperty("grad")), Map(c.GetProperty("v")), Map(c.GetProperty("hvp")));
        }
        return cases;

        static double[] Values(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetDouble())];
        static Dictionary<string, double[]> Map(JsonElement obj) => obj.EnumerateObject().ToDictionary(p => p.Name, p => Values(p.Value));
    }
}
