using System.Numerics;
using System.Runtime.InteropServices;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// The parameter server's side of a job that splits its first layer (model parallelism of that
/// layer): each worker owns its slice of the first layer and its optimizer state, as a
/// parameter-server shard beside its compute, so the server only merges the workers' shares into a
/// whole model-state tensor (parameters, then the optimizer's state slots, in one tensor: <see cref="TrainingSpec"/>
/// bounds a split job's model so that it fits one array) for checkpoints, and converts between a float64 model
/// state (checkpoints, each slot a tensor of its own) and that tensor in the job's precision (what the workers load).
/// </summary>
internal abstract class SplitServer
{
    /// <summary>The whole model state (job precision) from every worker's share (rank order).</summary>
    public abstract TensorPayload Merge(IReadOnlyList<TensorPayload> shares);

    /// <summary>A float64 model state as one tensor in the job's precision (a float64 job's parameters without slots travel as they are: payloads are immutable).</summary>
    public abstract TensorPayload FromFloat64(ModelState modelState);

    /// <summary>A job-precision model-state tensor as a float64 model state (widening float32 is exact).</summary>
    public abstract ModelState ToFloat64(TensorPayload modelState);

    public static SplitServer Create(TrainingSpec spec) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(spec),
        _ => new Typed<double>(spec),
    };

    private sealed class Typed<T>(TrainingSpec spec) : SplitServer where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly int _count = ParameterLayout.For(spec.Model).Count;

        public override TensorPayload Merge(IReadOnlyList<TensorPayload> shares)
        {
            if (shares.Count != spec.Workers)
                throw new ArgumentException($"{shares.Count} shares for {spec.Workers} workers.", nameof(shares));
            // Written straight into the payload's bytes: a checkpoint allocates the model state once.
            var merged = TensorPayload.Allocate<T>((1 + spec.Optimizer.StateSlots) * _count, out var values);
            for (int rank = 0; rank < shares.Count; rank++)
                FirstLayerSplit<T>.MergeShare(spec, rank, MemoryMarshal.Cast<byte, T>(shares[rank].Bytes.AsSpan()), values[.._count], values[_count..]);
            return merged;
        }

        public override TensorPayload FromFloat64(ModelState modelState)
        {
            if (typeof(T) == typeof(double) && modelState.Slots.Length == 0) return modelState.Parameters;
            var tensors = modelState.Tensors.ToArray();
            var whole = TensorPayload.Allocate<T>(checked(tensors.Length * _count), out var values);
            for (int part = 0; part < tensors.Length; part++)
                Precisions.Narrow<T>(tensors[part].ValuesOf<double>(_count, $"tensor {part} of the model state"), values.Slice(part * _count, _count));
            return whole;
        }

        // Widened tensor by tensor: a float32 model state in one tensor may be larger than its float64 parts could be together.
        public override ModelState ToFloat64(TensorPayload modelState) =>
            typeof(T) == typeof(double) ? ModelState.Apart(modelState, _count) : ModelState.Apart(MemoryMarshal.Cast<byte, T>(modelState.Bytes.AsSpan()), _count);
    }
}
