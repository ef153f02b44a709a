namespace Trainer.Core.Models;

/// <summary>
/// Something that turns parameters and a batch into a loss and its gradient. The hand-derived
/// <see cref="Mlp"/> and the autograd-built models both implement it, so a worker does not
/// care which engine computes its shard.
/// </summary>
/// <remarks>
/// Shapes: x is (samples x InputSize), y is (samples x OutputSize), both row-major, one sample
/// per row. The loss and gradient are SUMS over the samples (never means): shard results then
/// add up to the full-batch result, and <see cref="Losses.Scale"/> is applied once after the sum.
/// </remarks>
public interface IGradientModel : IGradientModel<double>;

/// <summary>
/// <see cref="IGradientModel"/> over parameters and data of element type T (float for
/// --precision float32). The loss is returned as a double whatever T is.
/// </summary>
public interface IGradientModel<T>
{
    ModelSpec Spec { get; }

    ParameterLayout Layout { get; }

    /// <summary>Writes the summed gradient into <paramref name="gradient"/> (overwriting it) and returns the summed loss.</summary>
    double LossAndGradient(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples, Span<T> gradient);

    /// <summary>Summed loss only (no backward pass).</summary>
    double Loss(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples);
}

/// <summary>
/// A model that can hand out a layer's gradient as its sufficient factors (δ and the layer's
/// input) instead of the matrix, for the exchange plans of <see cref="Trainer.Core.Training.ExchangePlan"/>.
/// </summary>
public interface IFactoredGradientModel<T> : IGradientModel<T>
{
    /// <summary>
    /// Writes the shard's pack (dense layers: summed gradients; factored layers: δ and inputs, one
    /// row per sample) into <paramref name="destination"/> and returns the summed loss.
    /// </summary>
    double LossAndPack(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples, Trainer.Core.Training.Pack pack, Span<T> destination);
}
