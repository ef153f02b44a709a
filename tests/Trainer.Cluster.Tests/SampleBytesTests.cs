using Trainer.Abstractions;
using Trainer.Core.Data;

namespace Trainer.Cluster.Tests;

/// <summary>
/// An upload's bytes read from rows a chunk at a time (<see cref="SampleBytes"/>) are the rows' float64
/// values, row after row, inputs and targets apart: the bytes of the arrays a whole payload was built
/// from, wherever a chunk's edge cuts a row.
/// </summary>
public sealed class SampleBytesTests
{
    // 13 rows of 5 inputs (40 bytes) and 3 targets (24 bytes).
    private static readonly Dataset Rows = Synthetic.Data(13, 5, 3, seed: 4);

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(39)]
    [InlineData(40)]
    [InlineData(41)]
    [InlineData(125)]
    [InlineData(520)]
    [InlineData(int.MaxValue)]
    public void Chunks_OfAnySize_JoinToTheRowsFloat64Bytes(int chunkBytes)
    {
        Assert.Equal(TensorPayload.From(Rows.X).Bytes, Joined(Rows, UploadPart.Inputs, chunkBytes));
        Assert.Equal(TensorPayload.From(Rows.Y).Bytes, Joined(Rows, UploadPart.Targets, chunkBytes));
    }

    [Fact]
    public void Chunks_OfAView_FollowItsRows_AsAPayloadOfTheRowsCopiedOut()
    {
        // A validation split's training rows, then its validation rows: views that pick rows out of order of the arrays.
        var split = new ValidationSplit(Rows.Count, 4, seed: 2);
        var view = new ConcatenatedRows(split.Training(Rows), split.Validation(Rows));
        var copied = view.ToDataset();

        Assert.Equal(TensorPayload.From(copied.X).Bytes, Joined(view, UploadPart.Inputs, 48));
        Assert.Equal(TensorPayload.From(copied.Y).Bytes, Joined(view, UploadPart.Targets, 48));
        var whole = DatasetPayload.Of(view);
        Assert.Equal(TensorPayload.From(copied.X).Bytes, whole.X.Bytes);
        Assert.Equal((Rows.Count, Rows.InputSize, Rows.OutputSize), (whole.Count, whole.InputSize, whole.OutputSize));
    }

    [Fact]
    public void Chunks_SayWhereTheyAre_InTheWholeTensor()
    {
        var chunks = SampleBytes.Chunks(Rows, UploadPart.Inputs, 100).ToList();

        Assert.Equal(Enumerable.Range(0, 6).Select(i => 100L * i), chunks.Select(c => c.Offset));
        Assert.All(chunks, c => Assert.Equal(13 * 40, c.TotalBytes));
        Assert.Equal(20, chunks[^1].Bytes.Length);
    }

    private static byte[] Joined(ISampleRows rows, UploadPart part, int chunkBytes)
    {
        var joined = new List<byte>();
        foreach (var chunk in SampleBytes.Chunks(rows, part, chunkBytes))
        {
            Assert.InRange(chunk.Bytes.Length, 1, chunkBytes);
            Assert.Equal(joined.Count, chunk.Offset);
            joined.AddRange(chunk.Bytes);
        }
        return [.. joined];
    }
}
