using System.Buffers.Binary;
using System.Text.Json;
using Trainer.Core.Data;

namespace Trainer.Core.Tests;

/// <summary>
/// The IDX reader against what Python reads from the same files (tests/reference/idx/make_known_values.py):
/// the small committed fixture always, the real Fashion-MNIST files when installed; and its refusals
/// of streams that are not what they claim, each naming the source and what was expected.
/// </summary>
public class IdxTests
{
    [Theory]
    [InlineData("train", 512)]
    [InlineData("t10k", 128)]
    public void SmallFixture_HoldsTheFirstImagesAndLabelsOfFashionMnist_ByteForByte(string split, int count)
    {
        var (images, labels) = ReadSplit(Reference.SmallFashionMnist, split);

        Assert.Equal([count, 28, 28], images.Shape);
        Assert.Equal([count], labels.Shape);
        AssertKnownValues(split, images, labels);
    }

    [Theory]
    [InlineData("train", 60_000)]
    [InlineData("t10k", 10_000)]
    public void RealFashionMnist_ReadsEveryImageAndLabel_AsPythonDoes(string split, int count)
    {
        var (images, labels) = ReadSplit(FashionMnist.RequireFolder(), split);
        var known = Known(split);

        Assert.Equal([count, 28, 28], images.Shape);
        Assert.Equal(784, images.ItemSize);
        Assert.Equal([count], labels.Shape);
        Assert.Equal(known.GetProperty("label_counts").EnumerateArray().Select(c => c.GetInt32()), Enumerable.Range(0, 10).Select(c => labels.Data.Count(l => l == c)));
        Assert.Equal(known.GetProperty("pixel_sum").GetInt64(), images.Data.Sum(b => (long)b));
        AssertKnownValues(split, images, labels);
    }

    [Fact]
    public void Values_DivideBytesBy255ByDefault_OrMultiplyByTheScale()
    {
        byte[] bytes = [0, 1, 128, 255];

        Assert.Equal([0.0, 1 / 255.0, 128 / 255.0, 1.0], Idx.Values(bytes, scale: null));
        Assert.Equal([0.0, 0.5, 64.0, 127.5], Idx.Values(bytes, scale: 0.5));
        Assert.Equal([0.0, 1.0, 128.0, 255.0], Idx.Values(bytes, scale: 1.0));
    }

    [Theory]
    [InlineData("labels as images", "src: magic number 0x00000801 is not an images file (N, rows, cols)'s 0x00000803 (1 dimension(s) where 3 are expected).")]
    [InlineData("text", "src: magic number 0x782C790A is not an images file (N, rows, cols)'s 0x00000803 (it is not an IDX file: those start with two zero bytes).")]
    [InlineData("floats", "src: magic number 0x00000D03 is not an images file (N, rows, cols)'s 0x00000803 (type 0x0D; only 0x08, unsigned bytes, is supported).")]
    [InlineData("gzip", "src: the file is gzip-compressed; name it with .gz so it is decompressed, or gunzip it.")]
    [InlineData("empty", "src: the file ends inside the IDX magic number (0 of 4 bytes); it is empty or truncated.")]
    [InlineData("short header", "src: the file ends inside its 3 dimension size(s) (6 of 12 bytes); it is truncated.")]
    [InlineData("zero images", "src: dimension 0 is 0; allowed: 1 to 2147483647.")]
    [InlineData("truncated", "src: the header promises (2 x 3 x 2) = 12 bytes of data, but the file holds 11; it is truncated.")]
    [InlineData("trailing", "src: 3 byte(s) after the 12 its header (2 x 3 x 2) promises; the file was appended to, or its header is wrong.")]
    [InlineData("huge claim", "src: the header promises (2000000000 x 1 x 1) = 2000000000 bytes of data, but the file holds 12; it is truncated.")]
    [InlineData("beyond an array", "src: shape (65536, 65536, ...) needs more than 2147483591 bytes, the most one array can hold.")]
    public void ReadImages_RefusesAStreamThatIsNotWhatItClaims_NamingSourceAndExpectation(string what, string message)
    {
        byte[] good = [0, 0, 8, 3, .. BigEndian(2, 3, 2), .. Enumerable.Range(1, 12).Select(i => (byte)i)];
        byte[] bytes = what switch
        {
            "labels as images" => [0, 0, 8, 1, .. BigEndian(12), .. good[16..]],
            "text" => "x,y\n1,2\n"u8.ToArray(),
            "floats" => [0, 0, 0x0D, 3, .. good[4..]],
            "gzip" => [0x1f, 0x8b, 8, 0, .. good],
            "empty" => [],
            "short header" => good[..10],
            "zero images" => [0, 0, 8, 3, .. BigEndian(0, 3, 2)],
            "truncated" => good[..^1],
            "trailing" => [.. good, 7, 7, 7],
            // Read as far as the stream goes, not allocated at the claimed size first.
            "huge claim" => [0, 0, 8, 3, .. BigEndian(2_000_000_000, 1, 1), .. good[16..]],
            "beyond an array" => [0, 0, 8, 3, .. BigEndian(65536, 65536, 1), .. good[16..]],
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };

        var e = Assert.Throws<IdxFormatException>(() => Idx.ReadImages(new MemoryStream(bytes), "src"));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void ReadLabels_RefusesAnImagesFile()
    {
        byte[] images = [0, 0, 8, 3, .. BigEndian(1, 1, 1), 5];

        var e = Assert.Throws<IdxFormatException>(() => Idx.ReadLabels(new MemoryStream(images), "labels.idx"));
        Assert.Equal("labels.idx: magic number 0x00000803 is not a labels file (N)'s 0x00000801 (3 dimension(s) where 1 are expected).", e.Message);
    }

    private static (IdxArray Images, IdxArray Labels) ReadSplit(string folder, string split) =>
        (Reference.ReadIdx(Path.Combine(folder, $"{split}-images-idx3-ubyte.gz"), images: true),
         Reference.ReadIdx(Path.Combine(folder, $"{split}-labels-idx1-ubyte.gz"), images: false));

    /// <summary>The recorded bytes and labels at fixed places, those within the file's count.</summary>
    private static void AssertKnownValues(string split, IdxArray images, IdxArray labels)
    {
        var known = Known(split);
        int checkedPlaces = 0;
        foreach (var place in known.GetProperty("pixels").EnumerateArray().Select(p => p.EnumerateArray().Select(v => v.GetInt32()).ToArray()))
        {
            var (image, row, col, value) = (place[0], place[1], place[2], place[3]);
            if (image >= images.Count) continue;
            Assert.True(value == images.Data[image * 784 + row * 28 + col], $"{split} image {image} at ({row}, {col}): {images.Data[image * 784 + row * 28 + col]}, Python read {value}");
            checkedPlaces++;
        }
        foreach (var place in known.GetProperty("label_at").EnumerateArray().Select(p => p.EnumerateArray().Select(v => v.GetInt32()).ToArray()))
            if (place[0] < labels.Count) Assert.True(place[1] == labels.Data[place[0]], $"{split} label {place[0]}: {labels.Data[place[0]]}, Python read {place[1]}");
        Assert.True(checkedPlaces >= 6, "too few recorded places fall within the file");
        Assert.All(labels.Data, l => Assert.InRange(l, 0, 9));
    }

    private static JsonElement Known(string split)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Reference.PathOf("idx", "fashion_mnist_values.json")));
        return doc.RootElement.GetProperty(split).Clone();
    }

    private static byte[] BigEndian(params int[] values)
    {
        var bytes = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }
}
