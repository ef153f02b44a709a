using System.Numerics;
using System.Runtime.Intrinsics;

namespace Trainer.Core.Optim;

/// <summary>
/// Adam (L2 weight decay, PyTorch's <c>Adam</c>) or AdamW (decoupled, PyTorch's <c>AdamW</c>), as
/// PyTorch 1.13's <c>_single_tensor_adam</c>/<c>_single_tensor_adamw</c> compute them at step t:
/// <code>
/// AdamW: w = w·(1 − lr·λ)          Adam: g = g + λ·w
/// m = β1·m + (1−β1)·g
/// v = β2·v + (1−β2)·g·g
/// denom = sqrt(v)/sqrt(1−β2^t) + eps
/// w = w + (−lr/(1−β1^t))·m / denom
/// </code>
/// State: two slots, m then v.
/// </summary>
/// <remarks>
/// Each line keeps PyTorch's order of operations ((1−β2)·g first, then ·g; the step size times m,
/// then / denom) so the values agree to rounding. They are not PyTorch's bits: its CPU kernels fuse
/// a·x + y in their vector body (Vectorized::fmadd) and not in their scalar tail, so no single
/// choice reproduces them; ours is unfused everywhere (see <see cref="Sgd{T}"/>).
/// <para>
/// The step is one pass over w, g, m and v, a vector of elements at a time: every line above is
/// one correctly rounded operation per element (no a·x + y is fused, no division becomes a
/// multiplication by a reciprocal), so the bits are those of taking the lines one at a time over the
/// whole range, and an element's bits do not depend on its position. One pass because the step sits
/// on a data-parallel job's critical path: it is bound by the divider (a square root and two
/// divisions per element), and separate passes added their loads, stores and calls on top.
/// </para>
/// </remarks>
public sealed class Adam<T> : Optimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly bool _decoupled;

    public Adam(OptimizerSpec spec, double learningRate, int steps, bool decoupled) : base(spec, learningRate, steps) =>
        _decoupled = decoupled;

    protected override void StepSlots(int step, Span<T> parameters, ReadOnlySpan<T> gradient, Span<T> m, Span<T> v)
    {
        int n = parameters.Length;
        double lr = LearningRate(step), beta1 = Spec.Beta1, beta2 = Spec.Beta2;
        // The step's scalars in float64, as PyTorch computes them in Python, then rounded to T once.
        var rule = new Rule(
            Decay: Spec.WeightDecay == 0 ? DecayKind.None : _decoupled ? DecayKind.Decoupled : DecayKind.L2,
            Shrink: Of(1 - lr * Spec.WeightDecay), Lambda: Of(Spec.WeightDecay),
            Beta1: Of(beta1), OneMinusBeta1: Of(1 - beta1), Beta2: Of(beta2), OneMinusBeta2: Of(1 - beta2),
            Correction2Sqrt: Of(Math.Sqrt(1 - Math.Pow(beta2, step))), Eps: Of(Spec.Eps),
            NegativeStepSize: Of(-(lr / (1 - Math.Pow(beta1, step)))));
        // Why 512-bit vectors where the runtime accelerates them, though Vector<T> stays 256-bit there: this pass
        // is bound by the divider, and a CPU with full-width 512-bit dividers (Zen 5) divides 8 lanes in about the
        // time of 4 (bench: OptimizerSteps). Every operation is correctly rounded lane by lane, so the width
        // never changes the bits.
        int i = Vector512.IsHardwareAccelerated ? rule.Step512(parameters, gradient, m, v) : rule.Step(parameters, gradient, m, v);
        if (i == n) return;
        // The tail goes through whole vectors: their lanes past the range hold zeros, whose results are dropped.
        int rest = n - i, width = Math.Max(Vector<T>.Count, Vector512<T>.Count);
        Span<T> lanes = stackalloc T[4 * width];
        lanes.Clear();
        Span<T> w = lanes[..width], g = lanes.Slice(width, width), mt = lanes.Slice(2 * width, width), vt = lanes.Slice(3 * width, width);
        parameters[i..].CopyTo(w);
        gradient[i..].CopyTo(g);
        m[i..].CopyTo(mt);
        v[i..].CopyTo(vt);
        rule.Step(w, g, mt, vt);
        w[..rest].CopyTo(parameters[i..]);
        mt[..rest].CopyTo(m[i..]);
        vt[..rest].CopyTo(v[i..]);
    }

    private enum DecayKind { None, Decoupled, L2 }

    /// <summary>One step's scalars and the step of whole vectors of elements, 256 or 512 bits at a time.</summary>
    private readonly record struct Rule(DecayKind Decay, T Shrink, T Lambda, T Beta1, T OneMinusBeta1,
        T Beta2, T OneMinusBeta2, T Correction2Sqrt, T Eps, T NegativeStepSize)
    {
        // NOTE: each operator below rounds once; the JIT does not contract a·x + y into a fused
        // multiply-add, and the bit tests (AdamBitsTests) fail if anything here ever does.

        /// <summary>Steps the whole <see cref="Vector{T}"/>s of the range; returns how many elements that was.</summary>
        public int Step(Span<T> parameters, ReadOnlySpan<T> gradient, Span<T> m, Span<T> v)
        {
            Vector<T> shrink = new(Shrink), lambda = new(Lambda), beta1 = new(Beta1), oneMinusBeta1 = new(OneMinusBeta1), beta2 = new(Beta2),
                oneMinusBeta2 = new(OneMinusBeta2), correction2Sqrt = new(Correction2Sqrt), eps = new(Eps), negativeStepSize = new(NegativeStepSize);
            int width = Vector<T>.Count, i = 0;
            for (; i <= parameters.Length - width; i += width)
            {
                var w = new Vector<T>(parameters[i..]);
                var g = new Vector<T>(gradient[i..]);
                if (Decay == DecayKind.Decoupled) w *= shrink;                          // w = w·(1 − lr·λ)
                else if (Decay == DecayKind.L2) g = w * lambda + g;                     // g = g + λ·w
                var mNew = new Vector<T>(m[i..]) * beta1 + g * oneMinusBeta1;           // m = β1·m + (1−β1)·g
                var vNew = new Vector<T>(v[i..]) * beta2 + g * oneMinusBeta2 * g;       // v = β2·v + ((1−β2)·g)·g
                var denom = Vector.SquareRoot(vNew) / correction2Sqrt + eps;            // denom = sqrt(v)/sqrt(bc2) + eps
                w += mNew * negativeStepSize / denom;                                   // w = w + (−lr/bc1)·m / denom
                mNew.CopyTo(m[i..]);
                vNew.CopyTo(v[i..]);
                w.CopyTo(parameters[i..]);
            }
            return i;
        }

        /// <summary>The same lines on <see cref="Vector512{T}"/>s; returns how many elements it stepped.</summary>
        public int Step512(Span<T> parameters, ReadOnlySpan<T> gradient, Span<T> m, Span<T> v)
        {
            var shrink = Vector512.Create(Shrink); var lambda = Vector512.Create(Lambda); var beta1 = Vector512.Create(Beta1);
            var oneMinusBeta1 = Vector512.Create(OneMinusBeta1); var beta2 = Vector512.Create(Beta2); var oneMinusBeta2 = Vector512.Create(OneMinusBeta2);
            var correction2Sqrt = Vector512.Create(Correction2Sqrt); var eps = Vector512.Create(Eps); var negativeStepSize = Vector512.Create(NegativeStepSize);
            int width = Vector512<T>.Count, i = 0;
            for (; i <= parameters.Length - width; i += width)
            {
                var w = Vector512.Create<T>(parameters[i..]);
                var g = Vector512.Create<T>(gradient[i..]);
                if (Decay == DecayKind.Decoupled) w *= shrink;
                else if (Decay == DecayKind.L2) g = w * lambda + g;
                var mNew = Vector512.Create<T>(m[i..]) * beta1 + g * oneMinusBeta1;
                var vNew = Vector512.Create<T>(v[i..]) * beta2 + g * oneMinusBeta2 * g;
                var denom = Vector512.Sqrt(vNew) / correction2Sqrt + eps;
                w += mNew * negativeStepSize / denom;
                mNew.CopyTo(m[i..]);
                vNew.CopyTo(v[i..]);
                w.CopyTo(parameters[i..]);
            }
            return i;
        }
    }
}
