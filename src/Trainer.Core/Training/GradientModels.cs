using Trainer.Core.Linalg;
using Trainer.Core.Models;

namespace Trainer.Core.Training;

/// <summary>Builds the <see cref="IGradientModel"/> a job asks for.</summary>
public static class GradientModels
{
    public static IGradientModel Create(TrainingSpec spec, IBlas? blas = null) => spec.Engine switch
    {
        Engine.Hand => new Mlp(spec.Model, blas),
        Engine.Autograd => throw new NotSupportedException("The autograd engine is not built yet."),
        _ => throw new ArgumentOutOfRangeException(nameof(spec)),
    };
}
