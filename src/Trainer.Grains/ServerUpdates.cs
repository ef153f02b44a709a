using System.Numerics;
using System.Runtime.InteropServices;
using Trainer.Abstractions;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// The parameter server's update builder in the job's precision, so the grain itself stays
/// precision-blind; also the float64 ⇄ job-precision conversions at the server's edges
/// (checkpoints and final weights are float64; widening float32 is exact).
/// </summary>
internal abstract class ServerUpdates
{
    /// <summary>The update of the last <see cref="Build"/>.</summary>
    public abstract TensorPayload Current { get; }

    /// <summary>Combines the shards' packs (in rank order) into the step's update; returns the step's loss.</summary>
    public abstract double Build(IReadOnlyList<ShardGradient> shards);

    /// <summary>float64 parameters to the job's precision (a copy).</summary>
    public abstract TensorPayload FromFloat64(TensorPayload parameters);

    /// <summary>Job-precision parameters to float64.</summary>
    public abstract TensorPayload ToFloat64(TensorPayload parameters);

    public static ServerUpdates Create(TrainingSpec spec, ExchangePlan plan) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(spec, plan),
        _ => new Typed<double>(spec, plan),
    };

    private sealed class Typed<T>(TrainingSpec spec, ExchangePlan plan) : ServerUpdates where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly UpdateBuilder<T> _builder = new(spec, plan);
        // Step s's update is sent with step s + 1 and read by every worker before it answers; step
        // s + 1's update is then written into the other buffer, so nothing is allocated per step.
        private readonly PayloadRing<T> _ring = new(plan.Update.Length);
        private readonly int _count = plan.Layout.Count;

        public override TensorPayload Current => _ring.CurrentPayload;

        public override double Build(IReadOnlyList<ShardGradient> shards)
        {
            _ring.Swap();
            _builder.Reset();
            foreach (var shard in shards)
                _builder.Add(shard.Rank, shard.Loss, shard.Gradient.ValuesOf<T>(_builder.ShardLength(shard.Rank), $"the gradient pack of worker {shard.Rank}"), _ring.Current);
            return _builder.Complete();
        }

        public override TensorPayload FromFloat64(TensorPayload parameters)
        {
            var values = parameters.ValuesOf<double>(_count, "the stored parameters");
            return typeof(T) == typeof(float) ? TensorPayload.From(Precisions.Narrow(values)) : TensorPayload.From(values);
        }

        public override TensorPayload ToFloat64(TensorPayload parameters) => typeof(T) == typeof(float)
            ? TensorPayload.From(Precisions.Widen(parameters.ValuesOf<float>(_count, "a worker's replica")))
            : parameters;
    }
}
