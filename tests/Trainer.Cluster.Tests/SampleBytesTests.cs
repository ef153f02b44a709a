using Trainer.Abstractions;
using Trainer.Client;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// An upload's bytes read from rows a chunk at a time (<see cref="SampleBytes"/>) are the rows' values, row
/// after row, inputs and targets apart: the bytes of the arrays a whole payload was built from, wherever a
/// chunk's edge cuts a row. Inputs travel as the rows hold them (IDX pixels as bytes, float32 as float32),
/// and the silo's reader of the payload (<see cref="PayloadRows"/>) reads every value with the bits the
/// rows themselves give, in either precision.
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

    private static readonly ModelSpec Classifier = new([784, 32, 10], Activation.Relu, LossKind.CrossEntropy, bias: true);

    [Theory]
    [InlineData(null)]
    [InlineData(0.5)]
    public void IdxRows_TravelAsOneBytePerPixel_AndReadBackWithTheFilesBits(double? scale)
    {
        using var opened = DataFiles.Open($"idx:{Cli.SmallFashionMnist}", Classifier, scale);
        // Training rows split as --val-fraction splits them, then the test set: the rows an upload of them carries.
        var split = new ValidationSplit(opened.Train.Count, 64, seed: 3);
        var rows = new ConcatenatedRows(split.Training(opened.Train), split.Validation(opened.Train), opened.Test!);

        Assert.Equal(StoredType.UInt8, rows.InputEncoding.Type);
        Assert.Equal(Idx.ByteValues(scale), rows.InputEncoding.ByteValues.ToArray());
        Assert.Equal(640 * 784, Joined(rows, UploadPart.Inputs, 1000).Length);
        var payload = DatasetPayload.Of(rows);
        Assert.Equal(640 * 784, payload.X.Bytes.Length);
        Assert.Equal(640 * 10 * sizeof(double), payload.Y.Bytes.Length);
        AssertReadAlike(rows, new PayloadRows(payload));
    }

    [Fact]
    public void Float32Rows_TravelAsFloat32_AndReadBackWithTheirBits()
    {
        var rows = new Float32Rows(Rows);

        var payload = DatasetPayload.Of(rows);

        Assert.Equal(13 * 5 * sizeof(float), payload.X.Bytes.Length);
        Assert.Equal(payload.X.Bytes, Joined(rows, UploadPart.Inputs, 7));
        AssertReadAlike(rows, new PayloadRows(payload));
    }

    [Fact]
    public void RowsHeldDifferently_TravelAsFloat64_ReadBackWithEachSetsBits()
    {
        // A float32 training set beside a float64 test set: no one encoding holds both, float64 holds each exactly.
        var rows = new ConcatenatedRows(new Float32Rows(Rows), Rows);

        var payload = DatasetPayload.Of(rows);

        Assert.Null(payload.Storage);
        Assert.Equal(26 * 5 * sizeof(double), payload.X.Bytes.Length);
        AssertReadAlike(rows, new PayloadRows(payload));
    }

    [Fact]
    public void IntegerRows_OtherThanBytes_TravelAsTheirFloat64Values()
    {
        int[] values = [0, 7, -3, 1 << 30, 5, 6];
        var inputs = new StoredArray(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), StoredType.Int32, [3, 2]);
        var targets = new StoredArray(TensorPayload.From([1.0, 2.0, 3.0]).Bytes, StoredType.Float64, [3, 1]);
        var rows = new StoredSet(inputs, targets, 1);

        var payload = DatasetPayload.Of(rows);

        Assert.Null(payload.Storage);
        Assert.Equal(values.Select(v => (double)v), payload.X.Values.ToArray());
        AssertReadAlike(rows, new PayloadRows(payload));
    }

    private static void AssertReadAlike(ISampleRows expected, ISampleRows actual)
    {
        Assert.Equal((expected.Count, expected.InputSize, expected.OutputSize), (actual.Count, actual.InputSize, actual.OutputSize));
        var (want, got) = (expected.ToArrays<double>(), actual.ToArrays<double>());
        Assert.Equal(want.X, got.X);
        Assert.Equal(want.Y, got.Y);
        var (want32, got32) = (expected.ToArrays<float>(), actual.ToArrays<float>());
        Assert.Equal(want32.X, got32.X);
        Assert.Equal(want32.Y, got32.Y);
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
