using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace Trainer.Core.Models;

/// <summary>Hidden-layer activation. The output layer is always linear.</summary>
public enum Activation
{
    Sigmoid,
    Tanh,
    Relu,
}

/// <summary>Forward values and derivatives of <see cref="Activation"/>, element-wise and vectorized.</summary>
public static class Activations
{
    public static Activation Parse(string? value, string field = "activation") => value?.Trim().ToLowerInvariant() switch
    {
        "sigmoid" => Activation.Sigmoid,
        "tanh" => Activation.Tanh,
        "relu" => Activation.Relu,
        _ => throw new SpecException(field, value, "allowed: sigmoid, tanh, relu"),
    };

    public static string Name(this Activation activation) => activation.ToString().ToLowerInvariant();

    /// <summary>a = f(z).</summary>
    public static void Forward(Activation activation, ReadOnlySpan<double> z, Span<double> a)
    {
        switch (activation)
        {
            case Activation.Sigmoid: TensorPrimitives.Sigmoid(z, a); break;
            case Activation.Tanh: TensorPrimitives.Tanh(z, a); break;
            case Activation.Relu: TensorPrimitives.Max(z, 0.0, a); break;
            default: throw new ArgumentOutOfRangeException(nameof(activation));
        }
    }

    /// <summary>
    /// grad *= f'(z), written in terms of the output a = f(z) where that is cheaper:
    /// sigmoid a(1-a), tanh 1-a^2, relu [z &gt; 0].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backward(Activation activation, ReadOnlySpan<double> z, ReadOnlySpan<double> a, Span<double> grad)
    {
        switch (activation)
        {
            case Activation.Sigmoid:
                for (int i = 0; i < grad.Length; i++) grad[i] *= a[i] * (1.0 - a[i]);
                break;
            case Activation.Tanh:
                for (int i = 0; i < grad.Length; i++) grad[i] *= 1.0 - a[i] * a[i];
                break;
            case Activation.Relu:
                for (int i = 0; i < grad.Length; i++) if (z[i] <= 0.0) grad[i] = 0.0;
                break;
            default: throw new ArgumentOutOfRangeException(nameof(activation));
        }
    }
}
