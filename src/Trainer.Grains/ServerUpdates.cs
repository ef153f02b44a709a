using System.Numerics;
using System.Runtime.InteropServices;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// The parameter server's update builder in the job's precision, so the grain itself stays
/// precision-blind; also the float64 ⇄ job-precision conversions at the server's edges
/// (checkpoints and final weights are float64; widening float32 is exact).
/// </summary>
internal abstract class ServerUpdates
{
    /// <summary>The update of the last completed step (<see cref="Complete"/>).</summary>
    public abstract TensorPayload Current { get; }

    /// <summary>Starts the next step's update (the previous one stays readable until the step after).</summary>
    public abstract void Begin();

    /// <summary>
    /// Adds the next shard's pack; shards must come in rank order. A large pack is added in parts,
    /// one on the calling thread and the others on compute threads at the same time: element-wise,
    /// so the same bits (the sum of the last shard is on the step's critical path, and one thread
    /// alone took ~0.2 ms of the seed job's ~1.2 ms step).
    /// </summary>
    public abstract ValueTask AddAsync(ShardGradient shard);

    /// <summary>Checks every shard was added; returns the step's loss. <see cref="Current"/> is then the step's update.</summary>
    public abstract double Complete();

    /// <summary>float64 parameters to the job's precision (a copy).</summary>
    public abstract TensorPayload FromFloat64(TensorPayload parameters);

    /// <summary>Job-precision parameters to float64.</summary>
    public abstract TensorPayload ToFloat64(TensorPayload parameters);

    public static ServerUpdates Create(TrainingSpec spec, ExchangePlan plan, ComputeScheduler compute) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(spec, plan, compute),
        _ => new Typed<double>(spec, plan, compute),
    };

    // Packs below this many values are added on one thread: a hop to a compute thread costs more.
    private const int PartValues = 1 << 15;

    private sealed class Typed<T>(TrainingSpec spec, ExchangePlan plan, ComputeScheduler compute) : ServerUpdates where T : unmanaged, IFloatingPointIeee754<T>
    {
        // Made at the first step the server builds: a job whose workers build the update themselves (over links) never needs them.
        private UpdateBuilder<T>? _builder;
        // Step s's update is sent with step s + 1 and read by every worker before it answers; step
        // s + 1's update is then written into the other buffer, so nothing is allocated per step.
        private PayloadRing<T>? _ring;
        private readonly int _count = plan.Layout.Count;

        private UpdateBuilder<T> Builder => _builder ??= new(spec, plan);

        private PayloadRing<T> Ring => _ring ??= new(plan.Update.Length);

        public override TensorPayload Current => Ring.CurrentPayload;

        public override void Begin()
        {
            Ring.Swap();
            Builder.Reset();
        }

        public override async ValueTask AddAsync(ShardGradient shard)
        {
            int rank = shard.Rank;
            int parts = Math.Clamp(Builder.ShardLength(rank) / PartValues, 1, compute.MaximumConcurrencyLevel);
            if (parts == 1)
            {
                Builder.Add(rank, shard.Loss, Values(shard), Ring.Current);
                return;
            }
            var others = new Task[parts - 1];
            for (int part = 1; part < parts; part++)
            {
                int which = part;
                others[part - 1] = compute.Run(() => Builder.AddPart(rank, Values(shard), Ring.Current, which, parts));
            }
            Builder.AddPart(rank, Values(shard), Ring.Current, 0, parts);
            await Task.WhenAll(others);
            Builder.Accept(rank, shard.Loss);
        }

        private ReadOnlySpan<T> Values(ShardGradient shard) =>
            shard.Gradient.ValuesOf<T>(Builder.ShardLength(shard.Rank), $"the gradient pack of worker {shard.Rank}");

        public override double Complete() => Builder.Complete();

        public override TensorPayload FromFloat64(TensorPayload parameters)
        {
            var values = parameters.ValuesOf<double>(_count, "the stored parameters");
            // A float64 job's parameters travel as they are (payloads are immutable): a copy would cost a 50M model 400 MB.
            return typeof(T) == typeof(float) ? TensorPayload.From(Precisions.Narrow(values)) : parameters;
        }

        public override TensorPayload ToFloat64(TensorPayload parameters) => typeof(T) == typeof(float)
            ? TensorPayload.From(Precisions.Widen(parameters.ValuesOf<float>(_count, "a worker's replica")))
            : parameters;
    }
}

/// <summary>
/// The parameter server's side of a job that splits its first layer: it merges the workers' shares
/// into whole parameters (the workers exchange their activation blocks among themselves).
/// </summary>
internal abstract class SplitServer
{
    /// <summary>Whole-model parameters (job precision) from every worker's share (rank order).</summary>
    public abstract TensorPayload Merge(IReadOnlyList<TensorPayload> shares);

    public static SplitServer Create(TrainingSpec spec) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(spec),
        _ => new Typed<double>(spec),
    };

    private sealed class Typed<T>(TrainingSpec spec) : SplitServer where T : unmanaged, IFloatingPointIeee754<T>
    {
        public override TensorPayload Merge(IReadOnlyList<TensorPayload> shares)
        {
            int count = ParameterLayout.For(spec.Model).Count;
            if (shares.Count != spec.Workers)
                throw new ArgumentException($"{shares.Count} shares for {spec.Workers} workers.", nameof(shares));
            // Written straight into the payload's bytes: a checkpoint allocates the parameters once.
            var merged = TensorPayload.Allocate<T>(count, out var parameters);
            for (int rank = 0; rank < shares.Count; rank++)
                FirstLayerSplit<T>.MergeShare(spec, rank, MemoryMarshal.Cast<byte, T>(shares[rank].Bytes.AsSpan()), parameters);
            return merged;
        }
    }
}
