using System.Numerics;
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
    public static void Forward<T>(Activation activation, ReadOnlySpan<T> z, Span<T> a) where T : IFloatingPointIeee754<T>
    {
        switch (activation)
        {
            case Activation.Sigmoid: Elementwise.Sigmoid(z, a); break;
            case Activation.Tanh: Elementwise.Tanh(z, a); break;
            case Activation.Relu: TensorPrimitives.Max(z, T.Zero, a); break;
            default: throw new ArgumentOutOfRangeException(nameof(activation));
        }
    }

    /// <summary>
    /// grad *= f'(z), written in terms of the output a = f(z) where that is cheaper:
    /// sigmoid a(1-a), tanh 1-a^2, relu [z &gt; 0].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backward<T>(Activation activation, ReadOnlySpan<T> z, ReadOnlySpan<T> a, Span<T> grad) where T : IFloatingPointIeee754<T>
    {
        switch (activation)
        {
            case Activation.Sigmoid:
                for (int i = 0; i < grad.Length; i++) grad[i] *= a[i] * (T.One - a[i]);
                break;
            case Activation.Tanh:
                for (int i = 0; i < grad.Length; i++) grad[i] *= T.One - a[i] * a[i];
                break;
            case Activation.Relu:
                for (int i = 0; i < grad.Length; i++) if (z[i] <= T.Zero) grad[i] = T.Zero;
                break;
            default: throw new ArgumentOutOfRangeException(nameof(activation));
        }
    }
}
