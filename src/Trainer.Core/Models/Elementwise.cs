using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace Trainer.Core.Models;

/// <summary>
/// exp, log, sigmoid and tanh, vectorized by TensorPrimitives, whose result for an element depends
/// on that element's argument alone.
/// </summary>
/// <remarks>
/// NOTE: TensorPrimitives' float64 Exp (and Sigmoid and Tanh, built on it) computes a whole vector
/// with the scalar Math.Exp as soon as one lane's argument is beyond its vector kernel's range
/// (|x| &gt; 708 for exp and sigmoid, &gt; 354 for tanh) or NaN, and a span shorter than one
/// 128-bit vector (1 double, 1-3 floats) always takes the scalar path (every function, float32
/// too). The two paths differ in the last place for about one argument in six. Which elements
/// share a vector depends on the span's length and on its address (the kernel aligns its stores),
/// so an element's bits would depend on its neighbours, on how the batch is sharded and on where
/// the GC put the buffer: a diverging job (hidden pre-activations past ±708) parted from the single
/// process in the last place. Here every in-range element takes the vector kernel and every
/// out-of-range one a scalar formula of its own. float32 arguments are widened to double inside the
/// vector kernel and never fall back, but short spans do. Measured on System.Numerics.Tensors 10.0.0 (ElementwiseTests keeps watch).
/// </remarks>
public static class Elementwise
{
    private enum Function { Exp, Log, Sigmoid, Tanh }

    // Spans at least this long take the vector kernel whatever the vector width (16 floats fill a 512-bit vector).
    private const int VectorSpan = 16;

    /// <summary>y = e^x.</summary>
    public static void Exp<T>(ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T> => Apply(Function.Exp, x, y);

    /// <summary>y = ln x.</summary>
    public static void Log<T>(ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T> => Apply(Function.Log, x, y);

    /// <summary>y = 1 / (1 + e^-x).</summary>
    public static void Sigmoid<T>(ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T> => Apply(Function.Sigmoid, x, y);

    /// <summary>y = tanh x.</summary>
    public static void Tanh<T>(ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T> => Apply(Function.Tanh, x, y);

    /// <summary>The largest |x| the vector kernel computes without falling back for the whole vector.</summary>
    private static T VectorRange<T>(Function function) where T : IFloatingPointIeee754<T> =>
        typeof(T) != typeof(double) ? T.PositiveInfinity : function switch
        {
            Function.Exp or Function.Sigmoid => T.CreateChecked(708),
            Function.Tanh => T.CreateChecked(354),
            _ => T.PositiveInfinity,
        };

    private static void Apply<T>(Function function, ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        if (y.Length < x.Length)
            throw new ArgumentException($"The destination has {y.Length} elements; {x.Length} needed.", nameof(y));
        if (x.IsEmpty) return;
        T range = VectorRange<T>(function);
        // The common case: every argument in range (NaN fails the test), so every lane takes the vector kernel.
        // NOTE: MaxMagnitude returns the element itself, sign included: -1254 is "largest" of [-1254, 3].
        if (x.Length >= VectorSpan && T.Abs(TensorPrimitives.MaxMagnitude(x)) <= range)
        {
            Vector(function, x, y);
            return;
        }

        // Rare (a diverging job, or a short span): the vector kernel on the in-range arguments with the
        // others zeroed, padded to VectorSpan, then each out-of-range element's scalar formula.
        // y may be x itself: each element is read before it is written.
        int length = Math.Max(VectorSpan, x.Length);
        var scratch = ArrayPool<T>.Shared.Rent(length);
        try
        {
            var s = scratch.AsSpan(0, length);
            s.Clear();
            for (int i = 0; i < x.Length; i++) if (T.Abs(x[i]) <= range) s[i] = x[i];
            Vector(function, s, s);
            for (int i = 0; i < x.Length; i++) y[i] = T.Abs(x[i]) <= range ? s[i] : Scalar(function, x[i]);
        }
        finally
        {
            ArrayPool<T>.Shared.Return(scratch);
        }
    }

    private static void Vector<T>(Function function, ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        switch (function)
        {
            case Function.Exp: TensorPrimitives.Exp(x, y); break;
            case Function.Log: TensorPrimitives.Log(x, y); break;
            case Function.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;
            case Function.Tanh: TensorPrimitives.Tanh(x, y); break;
            default: throw new ArgumentOutOfRangeException(nameof(function));
        }
    }

    private static T Scalar<T>(Function function, T x) where T : IFloatingPointIeee754<T> => function switch
    {
        Function.Exp => T.Exp(x),
        Function.Log => T.Log(x),
        // e^x / (1 + e^x) below zero keeps sigmoid(-720) = e^-720 (subnormal) where 1 / (1 + e^720) overflows to 0.
        Function.Sigmoid => x < T.Zero ? T.Exp(x) / (T.One + T.Exp(x)) : T.One / (T.One + T.Exp(-x)),
        Function.Tanh => T.Tanh(x),
        _ => throw new ArgumentOutOfRangeException(nameof(function)),
    };
}
