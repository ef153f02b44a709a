using System.Numerics;
using System.Numerics.Tensors;

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
        T shrink = Of(1 - lr * Spec.WeightDecay), decay = Of(Spec.WeightDecay);
        T b1 = Of(beta1), b2 = Of(beta2), oneMinusB1 = Of(1 - beta1), oneMinusB2 = Of(1 - beta2), eps = Of(Spec.Eps);
        T negativeStepSize = Of(-(lr / (1 - Math.Pow(beta1, step))));
        T correction2Sqrt = Of(Math.Sqrt(1 - Math.Pow(beta2, step)));
        bool decayed = Spec.WeightDecay != 0;
        Span<T> scratch = stackalloc T[2 * Piece];
        for (int i = 0; i < n; i += Piece)
        {
            int c = Math.Min(Piece, n - i);
            var w = parameters.Slice(i, c);
            var m = state.Slice(i, c);
            var v = state.Slice(n + i, c);
            Span<T> a = scratch[..c], b = scratch.Slice(Piece, c);
            scoped ReadOnlySpan<T> g = gradient.Slice(i, c);
            if (decayed && _decoupled) TensorPrimitives.Multiply(w, shrink, w);   // w = w·(1 − lr·λ)
            if (decayed && !_decoupled)
            {
                TensorPrimitives.MultiplyAdd(w, decay, g, a);                     // g = g + λ·w
                g = a;
            }
            TensorPrimitives.Multiply(m, b1, m);
            TensorPrimitives.MultiplyAdd(g, oneMinusB1, m, m);                    // m = β1·m + (1−β1)·g
            TensorPrimitives.Multiply(v, b2, v);
            TensorPrimitives.Multiply(g, oneMinusB2, b);
            TensorPrimitives.MultiplyAdd(b, g, v, v);                             // v = β2·v + ((1−β2)·g)·g
            TensorPrimitives.Sqrt(v, b);
            TensorPrimitives.Divide(b, correction2Sqrt, b);
            TensorPrimitives.Add(b, eps, b);                                      // denom = sqrt(v)/sqrt(bc2) + eps
            TensorPrimitives.Multiply(m, negativeStepSize, a);                    // (g is no longer read)
            TensorPrimitives.Divide(a, b, a);
            TensorPrimitives.Add(w, a, w);                                        // w = w + (−lr/bc1)·m / denom
        }
    }
}
