using System.Numerics;
using Trainer.Core.Training;

namespace Trainer.Core.Data;

/// <summary>
/// Inputs and targets, one sample per ROW, row-major: X is (Count x InputSize), Y is (Count x OutputSize).
/// Treated as immutable once built. Read in another precision, values are narrowed as
/// <see cref="Precisions.Narrow(ReadOnlySpan{double})"/> narrows them.
/// </summary>
public sealed class Dataset : ISampleRows
{
    public Dataset(double[] x, double[] y, int count, int inputSize, int outputSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outputSize);
        if (x.LongLength != (long)count * inputSize)
            throw new ArgumentException($"x has {x.LongLength} values, {count} samples of {inputSize} inputs need {(long)count * inputSize}.", nameof(x));
        if (y.LongLength != (long)count * outputSize)
            throw new ArgumentException($"y has {y.LongLength} values, {count} samples of {outputSize} outputs need {(long)count * outputSize}.", nameof(y));
        X = x;
        Y = y;
        Count = count;
        InputSize = inputSize;
        OutputSize = outputSize;
    }

    public double[] X { get; }
    public double[] Y { get; }
    public int Count { get; }
    public int InputSize { get; }
    public int OutputSize { get; }

    public void ReadInputs<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> =>
        Precisions.Narrow<T>(X.AsSpan(row * InputSize, InputSize), to);

    public void ReadTargets<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> =>
        Precisions.Narrow<T>(Y.AsSpan(row * OutputSize, OutputSize), to);

    public ReadOnlySpan<double> InputsOf(Shard shard) => X.AsSpan(shard.Start * InputSize, shard.Count * InputSize);

    public ReadOnlySpan<double> TargetsOf(Shard shard) => Y.AsSpan(shard.Start * OutputSize, shard.Count * OutputSize);

    /// <summary>The first <paramref name="count"/> samples (the batch when --batch is smaller than the file).</summary>
    public Dataset Take(int count) => count == Count ? this
        : new Dataset(X[..(count * InputSize)], Y[..(count * OutputSize)], count, InputSize, OutputSize);

    /// <summary>A copy of one shard's rows, for a worker that owns only its shard.</summary>
    public Dataset Slice(Shard shard) => new(InputsOf(shard).ToArray(), TargetsOf(shard).ToArray(), shard.Count, InputSize, OutputSize);
}
