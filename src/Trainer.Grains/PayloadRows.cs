using System.Numerics;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// Uploaded rows read where they arrived: the float64 bytes of a <see cref="DatasetPayload"/>, never
/// copied into arrays of their own (on the dataset grain's silo they are the job grain's own bytes).
/// Read in another precision, values are narrowed as a <see cref="Dataset"/> narrows them.
/// </summary>
internal sealed class PayloadRows : ISampleRows
{
    private readonly DatasetPayload _data;

    public PayloadRows(DatasetPayload data)
    {
        if (data.X.Length != (long)data.Count * data.InputSize || data.Y.Length != (long)data.Count * data.OutputSize)
            throw new ArgumentException($"{data.Count} rows need {(long)data.Count * data.InputSize} inputs and {(long)data.Count * data.OutputSize} targets; {data.X.Length} and {data.Y.Length} arrived.", nameof(data));
        _data = data;
    }

    public int Count => _data.Count;
    public int InputSize => _data.InputSize;
    public int OutputSize => _data.OutputSize;

    /// <summary>Every row's inputs, row-major.</summary>
    public ReadOnlySpan<double> Inputs => _data.X.Values;

    /// <summary>Every row's targets, row-major.</summary>
    public ReadOnlySpan<double> Targets => _data.Y.Values;

    public void ReadInputs<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> =>
        Precisions.Narrow<T>(Inputs.Slice(row * InputSize, InputSize), to);

    public void ReadTargets<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> =>
        Precisions.Narrow<T>(Targets.Slice(row * OutputSize, OutputSize), to);
}
