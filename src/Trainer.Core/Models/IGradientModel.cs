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

/// <summary>
/// A model that can run forward and backward once over several micro-shards and then hand out each
/// micro-shard's loss and pack with the bits of computing it alone (fewer, larger products: the weights
/// are packed for the GEMM once per group of micro-shards, <see cref="Trainer.Core.Training.RankStep{T}.TogetherRows"/>
/// rows at most, not once per micro-shard).
/// </summary>
public interface ILeafGradientModel<T> : IFactoredGradientModel<T>
{
    /// <summary>Whether it can on its GEMM (<see cref="Trainer.Core.Linalg.IBlas.RowsAlike"/>); if not, each micro-shard is computed alone.</summary>
    bool LeavesTogether { get; }

    /// <summary>
    /// Forward and backward over the rows of <paramref name="leaves"/> (consecutive micro-shards from row 0 of
    /// <paramref name="x"/>), each one's summed loss into <paramref name="losses"/>.
    /// </summary>
    void LeafLosses(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, ReadOnlySpan<Trainer.Core.Data.Shard> leaves, Span<double> losses);

    /// <summary>Micro-shard <paramref name="leaf"/>'s pack from the last <see cref="LeafLosses"/> (the same <paramref name="x"/>).</summary>
    void LeafPack(ReadOnlySpan<T> x, Trainer.Core.Data.Shard leaf, Trainer.Core.Training.Pack pack, Span<T> destination);

    /// <summary>
    /// Whether a micro-shard's pack laid out as <paramref name="pack"/> can be added to a partial sum in place (the
    /// overloads with add) with the bits of forming it alone and adding it after: a dense pack whose products the
    /// GEMM promises that for (<see cref="Trainer.Core.Linalg.IBlas.AddsInOnePass{T}"/>).
    /// </summary>
    bool AddsInPlace(Trainer.Core.Training.Pack pack);

    /// <summary><see cref="IFactoredGradientModel{T}.LossAndPack"/>, the pack added to <paramref name="destination"/> where <paramref name="add"/> (only where <see cref="AddsInPlace"/>).</summary>
    double LossAndPack(ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples, Trainer.Core.Training.Pack pack, Span<T> destination, bool add);

    /// <summary><see cref="LeafPack(ReadOnlySpan{T}, Trainer.Core.Data.Shard, Trainer.Core.Training.Pack, Span{T})"/>, added to <paramref name="destination"/> where <paramref name="add"/> (only where <see cref="AddsInPlace"/>).</summary>
    void LeafPack(ReadOnlySpan<T> x, Trainer.Core.Data.Shard leaf, Trainer.Core.Training.Pack pack, Span<T> destination, bool add);
}
