using System.Numerics;
using System.Runtime.InteropServices;
using Trainer.Core.Optim;

namespace Trainer.Core.Tests.Optim;

/// <summary>
/// Adam and AdamW step every element with exactly the bits of their formula taken one line at a
/// time, each line one correctly rounded operation in PyTorch's order (the reference below, element
/// by element in scalar code): the one-pass vector kernel changes no bit, whatever an element's
/// place (vector body or tail) and whatever its size (zeros, subnormals, large values).
/// </summary>
/// <remarks>
/// PyTorchOptimizerTests agree with PyTorch to rounding only; these pin the bits every recorded
/// Adam job keeps. A fused multiply-add, a reciprocal in place of a division or a reordered line
/// changes some elements' last bit and fails them.
/// </remarks>
public class AdamBitsTests
{
    private const int Steps = 6;

    public static TheoryData<OptimizerKind, double, int> Cases()
    {
        var cases = new TheoryData<OptimizerKind, double, int>();
        foreach (var kind in new[] { OptimizerKind.Adam, OptimizerKind.AdamW })
            foreach (double decay in new[] { 0.0, 0.01 })
                foreach (int length in new[] { 1, 7, 16, 29, 1027 })
                    cases.Add(kind, decay, length);
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Step_HasTheBitsOfTheFormulaLineByLine_InFloat64(OptimizerKind kind, double decay, int length) =>
        Compare<double>(kind, decay, length, x => x);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Step_HasTheBitsOfTheFormulaLineByLine_InFloat32(OptimizerKind kind, double decay, int length) =>
        Compare<float>(kind, decay, length, x => (float)x);

    private static void Compare<T>(OptimizerKind kind, double decay, int length, Func<double, T> narrow) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var spec = new OptimizerSpec { Kind = kind, WeightDecay = decay, Schedule = ScheduleKind.Cosine, WarmupSteps = 2 };
        const double rate = 1e-3;
        var optimizer = Optimizers.Create<T>(spec, rate, Steps);
        var random = new Random(length);
        var parameters = Values(random, length, narrow);
        var expected = (T[])parameters.Clone();
        var state = new T[2 * length];
        var expectedState = new T[2 * length];
        for (int t = 1; t <= Steps; t++)
        {
            var gradient = Values(random, length, narrow);
            optimizer.Step(t, parameters, gradient, state);
            Reference(spec, kind == OptimizerKind.AdamW, optimizer.LearningRate(t), t, expected, gradient, expectedState);
            Assert.True(MemoryMarshal.AsBytes(expected.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(parameters.AsSpan())), $"{kind} λ={decay}, {length} elements, step {t}: the parameters differ from the formula's bits");
            Assert.True(MemoryMarshal.AsBytes(expectedState.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(state.AsSpan())), $"{kind} λ={decay}, {length} elements, step {t}: m or v differ from the formula's bits");
        }
    }

    /// <summary>Magnitudes from subnormal to large, some zeros, both signs: every kind of rounding the lines meet.</summary>
    private static T[] Values<T>(Random random, int length, Func<double, T> narrow) where T : unmanaged, IFloatingPointIeee754<T> =>
        [.. Enumerable.Range(0, length).Select(_ => random.Next(8) == 0 ? T.Zero
            : narrow((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-330, 4))))];

    /// <summary>The Adam summary's lines, one element at a time, each a single rounded operation.</summary>
    private static void Reference<T>(OptimizerSpec spec, bool decoupled, double lr, int t, T[] w, T[] gradient, T[] state) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = w.Length;
        T Of(double x) => T.CreateTruncating(x);
        T shrink = Of(1 - lr * spec.WeightDecay), lambda = Of(spec.WeightDecay), b1 = Of(spec.Beta1), b2 = Of(spec.Beta2);
        T oneMinusB1 = Of(1 - spec.Beta1), oneMinusB2 = Of(1 - spec.Beta2), eps = Of(spec.Eps);
        T stepSize = Of(-(lr / (1 - Math.Pow(spec.Beta1, t)))), correction2Sqrt = Of(Math.Sqrt(1 - Math.Pow(spec.Beta2, t)));
        for (int i = 0; i < n; i++)
        {
            T g = gradient[i];
            if (spec.WeightDecay != 0 && decoupled) w[i] = w[i] * shrink;
            if (spec.WeightDecay != 0 && !decoupled) g = w[i] * lambda + g;
            T m = state[i] * b1;
            m = g * oneMinusB1 + m;
            T v = state[n + i] * b2;
            T gg = g * oneMinusB2;
            v = gg * g + v;
            T denom = T.Sqrt(v);
            denom = denom / correction2Sqrt;
            denom = denom + eps;
            T a = m * stepSize;
            a = a / denom;
            w[i] = w[i] + a;
            state[i] = m;
            state[n + i] = v;
        }
    }
}
