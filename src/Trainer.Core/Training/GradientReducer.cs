using System.Numerics;
using System.Runtime.CompilerServices;
using System.Numerics.Tensors;
using Trainer.Core.Models;

namespace Trainer.Core.Training;

/// <summary>
/// Combines shard results into the full-batch loss and gradient. The invariant, as in PyTorch DDP:
/// the combined gradient equals the single-process full-batch gradient. Shards are added in SHARD
/// order (rank 0, 1, ...), never in arrival order, so a run is bit-reproducible for a given
/// worker count; the loss scale (1 for SSE, 1/(N·D_out) for MSE) is applied once, after the sum.
/// </summary>
/// <remarks>
/// T is the job's precision: gradients are summed and scaled in T (for float the scale is rounded
/// to float first); shard losses are doubles and are summed in double.
/// </remarks>
public class GradientReducer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly double _scale;
    private readonly int _shards;
    private readonly T[] _sum;
    private double _loss;
    private int _next;

    public GradientReducer(int parameterCount, LossKind loss, int totalSamples, int outputs, int shards)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(shards);
        _shards = shards;
        _sum = new T[parameterCount];
        _scale = loss.Scale(totalSamples, outputs);
    }

    /// <summary>The combined gradient; valid after <see cref="Complete"/>.</summary>
    public ReadOnlySpan<T> Gradient => _sum;

    /// <summary>Starts a new step.</summary>
    public void Reset()
    {
        _next = 0;
        _loss = 0;
    }

    /// <summary>Adds shard <paramref name="rank"/>'s summed loss and gradient; shards must come in rank order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Add(int rank, double shardLoss, ReadOnlySpan<T> shardGradient)
    {
        if (rank >= _shards)
            throw new ArgumentOutOfRangeException(nameof(rank), $"Shard {rank} does not exist; there are {_shards}.");
        if (rank != _next)
            throw new InvalidOperationException($"Shard {rank} was added out of order; shard {_next} is next. Reduce in shard order.");
        if (shardGradient.Length != _sum.Length)
            throw new ArgumentException($"Shard {rank} sent {shardGradient.Length} gradient values, the model has {_sum.Length}.");
        if (rank == 0) shardGradient.CopyTo(_sum);
        else TensorPrimitives.Add(_sum, shardGradient, _sum);
        _loss += shardLoss;
        _next++;
    }

    /// <summary>Applies the loss scale and returns the full-batch loss.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public double Complete()
    {
        if (_next != _shards)
            throw new InvalidOperationException($"Only {_next} of {_shards} shards were added; a step needs every shard exactly once.");
        if (_scale != 1.0) TensorPrimitives.Multiply(_sum, T.CreateTruncating(_scale), _sum);
        return _loss * _scale;
    }
}

/// <summary>The float64 reducer.</summary>
public sealed class GradientReducer(int parameterCount, LossKind loss, int totalSamples, int outputs, int shards)
    : GradientReducer<double>(parameterCount, loss, totalSamples, outputs, shards);
