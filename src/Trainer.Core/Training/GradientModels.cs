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
}
