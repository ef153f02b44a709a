using System.Numerics;

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

    public override void Step(int step, Span<T> parameters, ReadOnlySpan<T> gradient, Span<T> state)
    {
        int n = CheckStep(step, parameters, gradient, state);
        double lr = LearningRate(step), beta1 = Spec.Beta1, beta2 = Spec.Beta2;
        // The step's scalars in float64, as PyTorch computes them in Python, then rounded to T once.
        var rule = new Rule(
            Decay: Spec.WeightDecay == 0 ? DecayKind.None : _decoupled ? DecayKind.Decoupled : DecayKind.L2,
            Shrink: new(Of(1 - lr * Spec.WeightDecay)), Lambda: new(Of(Spec.WeightDecay)),
            Beta1: new(Of(beta1)), OneMinusBeta1: new(Of(1 - beta1)), Beta2: new(Of(beta2)), OneMinusBeta2: new(Of(1 - beta2)),
            Correction2Sqrt: new(Of(Math.Sqrt(1 - Math.Pow(beta2, step)))), Eps: new(Of(Spec.Eps)),
            NegativeStepSize: new(Of(-(lr / (1 - Math.Pow(beta1, step))))));
        var m = state[..n];
        var v = state.Slice(n, n);
        int width = Vector<T>.Count, i = 0;
        for (; i <= n - width; i += width)
            rule.Step(parameters.Slice(i, width), gradient.Slice(i, width), m.Slice(i, width), v.Slice(i, width));
        if (i == n) return;
        // The tail goes through one whole vector: its lanes past the range hold zeros, whose results are dropped.
        int rest = n - i;
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

    /// <summary>One step's scalars, broadcast, and the step of one vector of elements.</summary>
    private readonly record struct Rule(DecayKind Decay, Vector<T> Shrink, Vector<T> Lambda, Vector<T> Beta1, Vector<T> OneMinusBeta1,
        Vector<T> Beta2, Vector<T> OneMinusBeta2, Vector<T> Correction2Sqrt, Vector<T> Eps, Vector<T> NegativeStepSize)
    {
        // NOTE: each operator below rounds once; the JIT does not contract a·x + y into a fused
        // multiply-add, and the bit tests (AdamBitsTests) fail if anything here ever does.
        public void Step(Span<T> parameters, ReadOnlySpan<T> gradient, Span<T> m, Span<T> v)
        {
            var w = new Vector<T>(parameters);
            var g = new Vector<T>(gradient);
            if (Decay == DecayKind.Decoupled) w *= Shrink;                          // w = w·(1 − lr·λ)
            else if (Decay == DecayKind.L2) g = w * Lambda + g;                     // g = g + λ·w
            var mNew = new Vector<T>(m) * Beta1 + g * OneMinusBeta1;                // m = β1·m + (1−β1)·g
            var vNew = new Vector<T>(v) * Beta2 + g * OneMinusBeta2 * g;            // v = β2·v + ((1−β2)·g)·g
            var denom = Vector.SquareRoot(vNew) / Correction2Sqrt + Eps;            // denom = sqrt(v)/sqrt(bc2) + eps
            w += mNew * NegativeStepSize / denom;                                   // w = w + (−lr/bc1)·m / denom
            mNew.CopyTo(m);
            vNew.CopyTo(v);
            w.CopyTo(parameters);
        }
    }
}
