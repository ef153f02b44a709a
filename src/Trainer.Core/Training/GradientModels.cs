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
    public static IGradientModel Create(TrainingSpec spec, IBlas? blas = null) => spec.Engine switch
    {
        Engine.Hand => new Mlp(spec.Model, blas),
        Engine.Autograd => new AutogradMlp(spec.Model, spec.GradientPenalty, blas),
        _ => throw new ArgumentOutOfRangeException(nameof(spec)),
    };

    /// <summary>The float32 model of a --precision float32 job: only the hand engine has one.</summary>
    public static IGradientModel<float> CreateSingle(TrainingSpec spec, IBlas? blas = null) => spec.Engine switch
    {
        Engine.Hand => new Mlp<float>(spec.Model, blas),
        _ => throw new SpecException("precision", "float32", "float32 needs --engine hand"),
    };
}
