using System.Numerics;
using System.Numerics.Tensors;

namespace Trainer.Core.Optim;

/// <summary>
/// Plain SGD, PyTorch's <c>SGD(momentum=0)</c>: w -= lr·(g + λ·w). Without weight decay it is the
/// seed's update w -= lr·g, with the seed's bits.
/// </summary>
public sealed class Sgd<T> : Optimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public Sgd(OptimizerSpec spec, double learningRate, int steps) : base(spec, learningRate, steps) { }

    protected override void StepSlots(int step, Span<T> parameters, ReadOnlySpan<T> gradient, Span<T> none, Span<T> neither)
    {
        int n = parameters.Length;
        // NOTE: MultiplyAdd is not fused (FusedMultiplyAdd is): w + g·(-lr) rounds the product, then
        // the sum, exactly like numpy's w - lr*g and like the seed's SGD before it, whose bits every
        // recorded job keeps. -lr is rounded to T first: -(float)lr, as the float32 seed did.
        T negativeRate = Of(-LearningRate(step));
        if (Spec.WeightDecay == 0)
        {
            TensorPrimitives.MultiplyAdd(gradient, negativeRate, parameters, parameters);
            return;
        }
        T decay = Of(Spec.WeightDecay);
        Span<T> scratch = stackalloc T[Piece];
        for (int i = 0; i < n; i += Piece)
        {
            int c = Math.Min(Piece, n - i);
            var w = parameters.Slice(i, c);
            var d = scratch[..c];
            TensorPrimitives.MultiplyAdd(w, decay, gradient.Slice(i, c), d);   // d = g + λ·w
            TensorPrimitives.MultiplyAdd(d, negativeRate, w, w);               // w = w - lr·d
        }
    }
}
