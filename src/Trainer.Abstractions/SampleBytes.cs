using System.Runtime.InteropServices;
using Trainer.Core.Data;

namespace Trainer.Abstractions;

/// <summary>
/// The bytes an upload carries of a set of rows (<see cref="DatasetPayload"/>): every row's inputs, then
/// (a tensor of their own) every row's targets, float64, row after row, read from the rows a chunk at a
/// time, so that whoever uploads rows never holds more of them than one chunk. The inputs are read as the
/// rows hold them (<see cref="ISampleRows.InputEncoding"/>), the targets as float64.
/// </summary>
public static class SampleBytes
{
    /// <summary>Bytes per row of <paramref name="part"/> (<see cref="UploadPart.Inputs"/> or <see cref="UploadPart.Targets"/>).</summary>
    private static int RowBytes(ISampleRows rows, UploadPart part) => Width(rows, part) * (part == UploadPart.Inputs ? rows.InputEncoding.Width : sizeof(double));

    private static int Width(ISampleRows rows, UploadPart part) => part switch
    {
        UploadPart.Inputs => rows.InputSize,
        UploadPart.Targets => rows.OutputSize,
        _ => throw new ArgumentOutOfRangeException(nameof(part), part, "rows have inputs and targets"),
    };

    /// <summary>Bytes of <paramref name="part"/> of <paramref name="rows"/>: every row's.</summary>
    public static long Length(ISampleRows rows, UploadPart part) => (long)rows.Count * RowBytes(rows, part);

    /// <summary>
    /// <paramref name="part"/> of <paramref name="rows"/> in chunks of at most <paramref name="chunkBytes"/>
    /// (the last may be shorter; a row may straddle two), each read when it is asked for, into an array of its own.
    /// </summary>
    public static IEnumerable<TensorChunk> Chunks(ISampleRows rows, UploadPart part, int chunkBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkBytes);
        long total = Length(rows, part);
        if (total > WireLimits.MaxTensorBytes)
            throw new ArgumentOutOfRangeException(nameof(rows), $"{rows.Count} rows are {total} bytes of {part}; a tensor may have at most {WireLimits.MaxTensorBytes}.");
        for (long offset = 0; offset < total; offset += chunkBytes)
        {
            var bytes = GC.AllocateUninitializedArray<byte>((int)Math.Min(chunkBytes, total - offset));
            Read(rows, part, offset, bytes);
            yield return new TensorChunk(offset, total, bytes);
        }
    }

    /// <summary>All of <paramref name="part"/> of <paramref name="rows"/> in one payload: the chunks' bytes, in one array.</summary>
    public static TensorPayload Whole(ISampleRows rows, UploadPart part) =>
        Chunks(rows, part, int.MaxValue).SingleOrDefault() is { } whole ? new TensorPayload(whole.Bytes) : TensorPayload.Empty;

    /// <summary>Bytes [<paramref name="offset"/>, offset + to.Length) of <paramref name="part"/> into <paramref name="to"/>.</summary>
    private static void Read(ISampleRows rows, UploadPart part, long offset, Span<byte> to)
    {
        int rowBytes = RowBytes(rows, part);
        Span<byte> straddling = rowBytes <= 4096 ? stackalloc byte[rowBytes] : new byte[rowBytes];
        long end = offset + to.Length;
        for (long row = offset / rowBytes; row * rowBytes < end; row++)
        {
            long first = Math.Max(offset, row * rowBytes), last = Math.Min(end, (row + 1) * rowBytes);
            // A whole row goes straight into the chunk; a row cut by the chunk's edge is read whole, and its part copied.
            if (last - first == rowBytes)
            {
                ReadRow(rows, part, (int)row, to.Slice((int)(first - offset), rowBytes));
                continue;
            }
            ReadRow(rows, part, (int)row, straddling);
            straddling.Slice((int)(first - row * rowBytes), (int)(last - first)).CopyTo(to[(int)(first - offset)..]);
        }
    }

    private static void ReadRow(ISampleRows rows, UploadPart part, int row, Span<byte> to)
    {
        if (part == UploadPart.Inputs) rows.ReadEncodedInputs(row, to);
        else rows.ReadTargets(row, MemoryMarshal.Cast<byte, double>(to));
    }
}
