using System.Numerics;
using System.Runtime.InteropServices;
using Trainer.Abstractions;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// A parameter server's parameters and update in the job's precision, so the grain itself stays
/// precision-blind. The parameters arrive and leave as float64 (checkpoints, final weights); a
/// float32 job narrows them once here and widens them (exactly) on the way out.
/// </summary>
internal abstract class ServerParameters
{
    /// <summary>The parameters to send this step.</summary>
    public abstract TensorPayload CurrentPayload { get; }

    public abstract void Reset();

    /// <summary>Adds one shard's result; shards must come in rank order.</summary>
    public abstract void Add(ShardGradient shard);

    /// <summary>Completes the reduction, writes the updated parameters into the other buffer, makes them current; returns the loss.</summary>
    public abstract double Complete();

    /// <summary>A float64 copy of the current parameters.</summary>
    public abstract TensorPayload ToFloat64();

    public static ServerParameters Create(TrainingSpec spec, TensorPayload float64Parameters) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(spec, float64Parameters),
        _ => new Typed<double>(spec, float64Parameters),
    };

    private sealed class Typed<T> : ServerParameters where T : unmanaged, IFloatingPointIeee754<T>
    {
        // The parameters live in the two buffers of the ring: step s sends the current one, and the
        // update writes step s+1's parameters into the other, so nothing is copied or allocated per step.
        private readonly PayloadRing<T> _ring;
        private readonly ParameterUpdate<T> _update;
        private readonly int _count;

        public Typed(TrainingSpec spec, TensorPayload float64Parameters)
        {
            _count = Core.Models.ParameterLayout.For(spec.Model).Count;
            var initial = float64Parameters.ValuesOf<double>(_count, "the stored parameters");
            _ring = new PayloadRing<T>(_count);
            if (typeof(T) == typeof(float)) Precisions.Narrow(initial, MemoryMarshal.Cast<T, float>(_ring.Current));
            else initial.CopyTo(MemoryMarshal.Cast<T, double>(_ring.Current));
            _update = new ParameterUpdate<T>(spec, _count, spec.Batch);
        }

        public override TensorPayload CurrentPayload => _ring.CurrentPayload;

        public override void Reset() => _update.Reset();

        public override void Add(ShardGradient shard) =>
            _update.Add(shard.Rank, shard.Loss, shard.Gradient.ValuesOf<T>(_count, $"the gradient of worker {shard.Rank}"));

        public override double Complete()
        {
            double loss = _update.Complete(_ring.Current, _ring.Other);
            _ring.Swap();
            return loss;
        }

        public override TensorPayload ToFloat64() => typeof(T) == typeof(float)
            ? TensorPayload.From(Precisions.Widen(MemoryMarshal.Cast<T, float>(_ring.Current)))
            : TensorPayload.From(MemoryMarshal.Cast<T, double>(_ring.Current));
    }
}
