using System.Numerics;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// Uploaded rows read where they arrived: the bytes of a <see cref="DatasetPayload"/>, never copied into
/// arrays of their own (on the dataset grain's silo they are the job grain's own bytes). The inputs are
/// held as they were uploaded (<see cref="DatasetPayload.Storage"/>: IDX pixels as bytes, a float32 file's
/// values as float32) and converted as they are read, exactly as the client's files convert them
/// (<see cref="StoredArray"/>); the targets are float64, narrowed as a <see cref="Dataset"/> narrows them.
/// </summary>
internal sealed class PayloadRows : ISampleRows
{
    private readonly DatasetPayload _data;
    private readonly StoredArray _inputs;

    public PayloadRows(DatasetPayload data)
    {
        if (data.X.Bytes.Length != data.InputBytes || data.Y.Bytes.Length != data.TargetBytes)
            throw new ArgumentException($"{data.Count} rows need {data.InputBytes} bytes of inputs ({data.Encoding}) and {data.TargetBytes} of targets; {data.X.Bytes.Length} and {data.Y.Bytes.Length} arrived.", nameof(data));
        _data = data;
        _inputs = data.Encoding.Over(data.X.Bytes, data.Count, data.InputSize);
    }

    public int Count => _data.Count;
    public int InputSize => _data.InputSize;
    public int OutputSize => _data.OutputSize;

    /// <summary>Every row's targets, row-major.</summary>
    private ReadOnlySpan<double> Targets => _data.Y.Values;

    public void ReadInputs<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> =>
        _inputs.Read((long)row * InputSize, to[..InputSize]);

    public void ReadTargets<T>(int row, Span<T> to) where T : unmanaged, IFloatingPointIeee754<T> =>
        Precisions.Narrow<T>(Targets.Slice(row * OutputSize, OutputSize), to);

    public InputEncoding InputEncoding => _inputs.Encoding;

    public void ReadEncodedInputs(int row, Span<byte> to) => _inputs.ReadEncoded((long)row * InputSize, InputSize, to);
}
