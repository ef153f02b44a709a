using System.Numerics;
using System.Numerics.Tensors;

namespace Trainer.Core.Optim;

/// <summary>
/// SGD with momentum μ, PyTorch 1.13's <c>SGD(momentum=μ, dampening=0, nesterov=…)</c>:
/// d = g + λ·w; b = μ·b + d; w -= lr·b (heavy ball) or w -= lr·(d + μ·b) (Nesterov).
/// State: one slot, the buffer b.
/// </summary>
/// <remarks>
/// PyTorch starts b as a copy of the first d; b = 0 before step 1 gives μ·0 + d = d, the same.
/// </remarks>
public sealed class Momentum<T> : Optimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly bool _nesterov;

    public Momentum(OptimizerSpec spec, double learningRate, int steps, bool nesterov) : base(spec, learningRate, steps) =>
        _nesterov = nesterov;

    protected override void StepSlots(int step, Span<T> parameters, ReadOnlySpan<T> gradient, Span<T> buffer, Span<T> none)
    {
        int n = parameters.Length;
        // NOTE: every a·x + y below is MultiplyAdd, not fused, for the reason Sgd gives: with μ = 0
        // this is Sgd's arithmetic, and numpy's a*x + y reproduces each element.
        T negativeRate = Of(-LearningRate(step)), momentum = Of(Spec.Momentum), decay = Of(Spec.WeightDecay);
        bool decayed = Spec.WeightDecay != 0;
        Span<T> scratch = stackalloc T[2 * Piece];
        for (int i = 0; i < n; i += Piece)
        {
            int c = Math.Min(Piece, n - i);
            var w = parameters.Slice(i, c);
            var b = buffer.Slice(i, c);
            scoped ReadOnlySpan<T> d = gradient.Slice(i, c);
            if (decayed)
            {
                TensorPrimitives.MultiplyAdd(w, decay, d, scratch[..c]);   // d = g + λ·w
                d = scratch[..c];
            }
            TensorPrimitives.MultiplyAdd(b, momentum, d, b);               // b = μ·b + d
            if (_nesterov)
            {
                var ahead = scratch.Slice(Piece, c);
                TensorPrimitives.MultiplyAdd(b, momentum, d, ahead);       // d + μ·b
                TensorPrimitives.MultiplyAdd(ahead, negativeRate, w, w);   // w -= lr·(d + μ·b)
            }
            else
            {
                TensorPrimitives.MultiplyAdd(b, negativeRate, w, w);       // w -= lr·b
            }
        }
    }
}
