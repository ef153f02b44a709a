using System.Numerics;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// A worker's shard, model and gradient buffers in the job's precision, so the worker grain stays
/// precision-blind. A float32 job narrows the shard's rows once, when the worker loads them.
/// </summary>
internal abstract class ShardModel
{
    /// <summary>The shard's summed loss and gradient at <paramref name="parameters"/> (of the job's precision).</summary>
    public abstract (double Loss, TensorPayload Gradient) Compute(TensorPayload parameters);

    public static ShardModel Create(TrainingSpec spec, Dataset shard) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(GradientModels.CreateSingle(spec), Precisions.Narrow(shard.X), Precisions.Narrow(shard.Y), shard.Count),
        _ => new Typed<double>(GradientModels.Create(spec), shard.X, shard.Y, shard.Count),
    };

    private sealed class Typed<T>(IGradientModel<T> model, T[] x, T[] y, int samples) : ShardModel
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly PayloadRing<T> _gradients = new(model.Layout.Count);

        public override (double Loss, TensorPayload Gradient) Compute(TensorPayload parameters)
        {
            var values = parameters.ValuesOf<T>(model.Layout.Count, "the parameters sent to the worker");
            _gradients.Swap();
            double loss = model.LossAndGradient(values, x, y, samples, _gradients.Current);
            return (loss, _gradients.CurrentPayload);
        }
    }
}
