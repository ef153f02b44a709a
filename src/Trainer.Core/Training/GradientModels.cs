using Trainer.Core.Autograd;
using Trainer.Core.Linalg;
using Trainer.Core.Models;

namespace Trainer.Core.Training;

/// <summary>
/// Builds the <see cref="IGradientModel"/> a job asks for. The gradient penalty exists only on the
/// autograd path (it needs double backward); <see cref="TrainingSpec.Validate"/> rejects it with --engine hand.
/// </summary>
public static class GradientModels
{
    /// <summary>The model of <paramref name="spec"/>, its products on <paramref name="blas"/> or else on the job's kernel (<see cref="Blas.For"/>).</summary>
    public static IGradientModel Create(TrainingSpec spec, IBlas? blas = null) => spec.Engine switch
    {
        Engine.Hand => new Mlp(spec.Model, blas ?? Blas.For(spec.Gemm)),
        Engine.Autograd => new AutogradMlp(spec.Model, spec.GradientPenalty, blas ?? Blas.For(spec.Gemm)),
        _ => throw new ArgumentOutOfRangeException(nameof(spec)),
    };

    /// <summary>
    /// A shard's summed loss and its pack under <paramref name="pack"/>'s layout: factors where the
    /// layout has them (the model must be able to hand them out), else the plain flat gradient,
    /// which is exactly a dense-only pack. Workers, the single-process trainer and tests all go through here.
    /// </summary>
    public static double LossAndPack<T>(IGradientModel<T> model, ReadOnlySpan<T> parameters, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int samples, Pack pack, Span<T> destination)
    {
        if (!pack.AnyFactored) return model.LossAndGradient(parameters, x, y, samples, destination);
        if (model is not IFactoredGradientModel<T> factored)
            throw new InvalidOperationException($"The exchange plan factors layers but the model ({model.GetType().Name}) cannot produce factors.");
        return factored.LossAndPack(parameters, x, y, samples, pack, destination);
    }

    /// <summary>The float32 model of a --precision float32 job: only the hand engine has one.</summary>
    public static IGradientModel<float> CreateSingle(TrainingSpec spec, IBlas? blas = null) => spec.Engine switch
    {
        Engine.Hand => new Mlp<float>(spec.Model, blas ?? Blas.For(spec.Gemm)),
        _ => throw new SpecException("precision", "float32", "float32 needs --engine hand"),
    };
}
