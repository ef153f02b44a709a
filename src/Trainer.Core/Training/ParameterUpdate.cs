using System.Numerics;
using System.Runtime.InteropServices;
using Trainer.Core.Optim;

namespace Trainer.Core.Training;

/// <summary>
/// The parameter server's half of a step in precision T: add the shard results in rank order,
/// apply the loss scale, then the optimizer out of place. The parameter server grain and the
/// single-process <see cref="LocalTrainer"/> both use it, so they do the same arithmetic.
/// </summary>
public sealed class ParameterUpdate<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly GradientReducer<T> _reducer;
    private readonly IOptimizer _optimizer;

    public ParameterUpdate(TrainingSpec spec, int parameterCount, int totalSamples)
    {
        if (typeof(T) != typeof(double) && typeof(T) != typeof(float))
            throw new NotSupportedException($"ParameterUpdate<{typeof(T).Name}>: only double and float are supported.");
        _reducer = new GradientReducer<T>(parameterCount, spec.Model.Loss, totalSamples, spec.Model.OutputSize, spec.Workers);
        _optimizer = new Sgd(spec.LearningRate);
    }

    /// <summary>Starts a new step.</summary>
    public void Reset() => _reducer.Reset();

    /// <summary>Adds shard <paramref name="rank"/>'s summed loss and gradient; shards must come in rank order.</summary>
    public void Add(int rank, double shardLoss, ReadOnlySpan<T> shardGradient) => _reducer.Add(rank, shardLoss, shardGradient);

    /// <summary>Completes the reduction, writes next = update(current) (next may be current) and returns the full-batch loss.</summary>
    public double Complete(ReadOnlySpan<T> current, Span<T> next)
    {
        double loss = _reducer.Complete();
        if (typeof(T) == typeof(double))
            _optimizer.Step(MemoryMarshal.Cast<T, double>(current), MemoryMarshal.Cast<T, double>(_reducer.Gradient), MemoryMarshal.Cast<T, double>(next));
        else
            _optimizer.Step(MemoryMarshal.Cast<T, float>(current), MemoryMarshal.Cast<T, float>(_reducer.Gradient), MemoryMarshal.Cast<T, float>(next));
        return loss;
    }
}
