using System.Numerics.Tensors;
using Trainer.Core.Models;

namespace Trainer.Core.Autograd;

/// <summary>Element-wise functions: exp, log, sigmoid, tanh, relu.</summary>
/// <remarks>
/// Where the derivative is cheapest in terms of the output y = f(x) the rule uses the result
/// tensor itself (exp: y, sigmoid: y(1-y), tanh: 1-y²). That is also right for double backward:
/// y is a graph node whose parent is x, so differentiating the rule reaches x through it.
/// </remarks>
public sealed partial class Tensor
{
    public Tensor Exp()
    {
        var data = new double[Size];
        Elementwise.Exp<double>(_data, data);
        Tensor? y = null;
        y = Node(data, Shape, "exp", [this], (g, need) => [g * y!]);
        return y;
    }

    /// <summary>Natural logarithm; inputs &lt;= 0 give NaN or -inf, as in PyTorch.</summary>
    public Tensor Log()
    {
        var x = this;
        var data = new double[Size];
        Elementwise.Log<double>(_data, data);
        return Node(data, Shape, "log", [x], (g, need) => [g / x]);
    }

    public Tensor Sigmoid()
    {
        var data = new double[Size];
        Elementwise.Sigmoid<double>(_data, data);
        Tensor? y = null;
        // g · (y (1 - y)), grouped as the hand-derived Mlp groups it, so both agree to the last bit.
        y = Node(data, Shape, "sigmoid", [this], (g, need) => [g * (y! * (1.0 - y!))]);
        return y;
    }

    public Tensor Tanh()
    {
        var data = new double[Size];
        Elementwise.Tanh<double>(_data, data);
        Tensor? y = null;
        y = Node(data, Shape, "tanh", [this], (g, need) => [g * (1.0 - y! * y!)]);
        return y;
    }

    /// <summary>max(x, 0). Its derivative is taken as 0 at x = 0, like PyTorch.</summary>
    public Tensor Relu()
    {
        var data = new double[Size];
        TensorPrimitives.Max(_data, 0.0, data);
        var x = this;
        return Node(data, Shape, "relu", [x], (g, need) =>
        {
            // NOTE: the mask is a constant: relu is piecewise linear, so its second derivative is 0.
            var mask = new double[x.Size];
            for (int i = 0; i < mask.Length; i++) mask[i] = x._data[i] > 0.0 ? 1.0 : 0.0;
            return [g * new Tensor(mask, x.Shape)];
        });
    }
}
