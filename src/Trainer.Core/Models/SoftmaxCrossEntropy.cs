using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace Trainer.Core.Models;

/// <summary>
/// Softmax cross-entropy of logits against target rows, SUMMED over the rows, and its gradient with
/// respect to the logits. Numerically stable: each row's maximum is subtracted before exp.
/// </summary>
/// <remarks>
/// Legend: B = rows (samples), C = classes; z logits (B, C), y targets (B, C), row-major:
/// <code>
/// m_r  = max_k z_rk
/// e_rk = exp(z_rk - m_r)                       every exponent ≤ 0: no overflow; the largest term is 1, so s_r ≥ 1
/// s_r  = Σ_k e_rk
/// loss = Σ_r Σ_k y_rk (log s_r - (z_rk - m_r))  = -Σ_r Σ_k y_rk log softmax(z_r)_k
/// δ_rk = e_rk / s_r · t_r - y_rk,  t_r = Σ_k y_rk   (softmax(z_r)_k - y_rk for a one-hot row)
/// </code>
/// Targets are one-hot rows (class labels) or probability rows; δ above is the exact gradient for
/// any y. Terms with y_rk = 0 are skipped, so a -inf logit of another class leaves the loss finite,
/// as with PyTorch's class-index <c>cross_entropy</c>. Every value of row r depends on row r alone,
/// computed in the same order whichever rows share the call, so a shard's δ rows have the full
/// batch's bits. The loss is accumulated in double whatever T is, as the squared error is.
/// </remarks>
public static class SoftmaxCrossEntropy
{
    /// <summary>
    /// The summed loss of <paramref name="rows"/> rows of <paramref name="classes"/> logits; with
    /// <paramref name="computeDelta"/>, δ into <paramref name="delta"/> (otherwise it is only scratch).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double Sum<T>(ReadOnlySpan<T> logits, ReadOnlySpan<T> targets, int rows, int classes, Span<T> delta, bool computeDelta)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        int n = rows * classes;
        if (logits.Length < n || targets.Length < n || delta.Length < n)
            throw new ArgumentException($"{rows} rows of {classes} classes need {n} logits, targets and deltas; got {logits.Length}, {targets.Length} and {delta.Length}.");
        var z = logits[..n];
        var y = targets[..n];
        var e = delta[..n];
        // e = z - m_r, row by row, then exp over the whole block at once (vectorized; each element's bits are its own, see Elementwise).
        for (int r = 0; r < rows; r++)
        {
            var zr = z.Slice(r * classes, classes);
            TensorPrimitives.Subtract(zr, TensorPrimitives.Max(zr), e.Slice(r * classes, classes));
        }
        Elementwise.Exp<T>(e, e);

        double loss = 0;
        for (int r = 0; r < rows; r++)
        {
            var zr = z.Slice(r * classes, classes);
            var yr = y.Slice(r * classes, classes);
            var er = e.Slice(r * classes, classes);
            T m = TensorPrimitives.Max(zr);
            // NOTE: sequential sums, not TensorPrimitives.Sum: a vectorized sum's order could depend on
            // the row's length and alignment, and s_r and t_r reach δ, which must not depend on the shard.
            T s = T.Zero, t = T.Zero;
            for (int k = 0; k < classes; k++) s += er[k];
            double logS = double.CreateTruncating(T.Log(s));
            for (int k = 0; k < classes; k++)
            {
                if (yr[k] == T.Zero) continue;
                loss += double.CreateTruncating(yr[k]) * (logS - double.CreateTruncating(zr[k] - m));
                t += yr[k];
            }
            if (!computeDelta) continue;
            TensorPrimitives.Divide(er, s, er);
            TensorPrimitives.Multiply(er, t, er);
            TensorPrimitives.Subtract(er, yr, er);
        }
        return loss;
    }
}
