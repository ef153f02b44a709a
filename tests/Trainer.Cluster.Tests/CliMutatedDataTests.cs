using System.Buffers.Binary;
using Trainer.Core.Data;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Kinds of damage the reader fuzz tests (Trainer.Core.Tests' ReaderFuzzTests) throw at the npy and
/// IDX readers, through `trainer train`: each ends with exit code 2 and one line naming the field
/// (data), the file and what is wrong, before any silo starts.
/// </summary>
public sealed class CliMutatedDataTests
{
    [Theory]
    [InlineData("cut inside the header", "the file ends inside the header")]
    [InlineData("version 2 header length of 4 GB", "the file ends inside the header")]
    [InlineData("shape claims 2^31 - 1 rows", "shape (2147483647, 4) needs")]
    [InlineData("cut inside the data", "it is truncated")]
    [InlineData("dtype of another byte order", "dtype '>f8' is not supported")]
    public async Task DamagedNpyInputs_ExitWith2_NamingTheFieldAndTheFile(string damage, string message)
    {
        var folder = Cli.TempFolder();
        string x = Path.Combine(folder, "x.npy");
        CliBadInputTests.WriteNpy(folder, "x.npy", new double[3 * 4], 3, 4);
        CliBadInputTests.WriteNpy(folder, "y.npy", new double[3 * 2], 3, 2);
        var bytes = File.ReadAllBytes(x);
        bytes = damage switch
        {
            "cut inside the header" => bytes[..40],
            "version 2 header length of 4 GB" => V2WithHeaderLength(bytes, uint.MaxValue),
            "shape claims 2^31 - 1 rows" => Replace(bytes, "(3, 4)", "(2147483647, 4)"),
            "cut inside the data" => bytes[..^9],
            _ => Replace(bytes, "<f8", ">f8"),
        };
        File.WriteAllBytes(x, bytes);

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"npy:{folder}", "--model", "4-2", "--steps", "1");

        Assert.Equal(2, code);
        Assert.Contains($"trainer: error: data: '{x}' is not allowed; {x}: ", err);
        Assert.Contains(message, err);
    }

    [Theory]
    [InlineData("a dimension of 2^31 - 1", "dimension 1 is", "needs more than")]
    [InlineData("a dimension of 0", "dimension 0 is 0; allowed: 1 to 2147483647", null)]
    [InlineData("cut inside the pixels", "it is truncated", null)]
    [InlineData("bytes appended", "byte(s) after the", null)]
    public async Task DamagedIdxImages_ExitWith2_NamingTheFieldAndTheFile(string damage, string message, string? orMessage)
    {
        var folder = Cli.TempFolder();
        string images = Path.Combine(folder, "train-images-idx3-ubyte");
        var bytes = new byte[16 + 2 * 3 * 3];
        BinaryPrimitives.WriteInt32BigEndian(bytes, Idx.ImagesMagic);
        foreach (var (d, size) in new[] { (0, 2), (1, 3), (2, 3) }) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), size);
        var labels = new byte[8 + 2];
        BinaryPrimitives.WriteInt32BigEndian(labels, Idx.LabelsMagic);
        BinaryPrimitives.WriteInt32BigEndian(labels.AsSpan(4), 2);
        File.WriteAllBytes(Path.Combine(folder, "train-labels-idx1-ubyte"), labels);
        switch (damage)
        {
            case "a dimension of 2^31 - 1": BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), int.MaxValue); break;
            case "a dimension of 0": BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), 0); break;
            case "cut inside the pixels": bytes = bytes[..^5]; break;
            default: bytes = [.. bytes, 1, 2, 3]; break;
        }
        File.WriteAllBytes(images, bytes);

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"idx:{folder}", "--model", "9-2", "--loss", "ce", "--steps", "1");

        Assert.Equal(2, code);
        Assert.Contains($"trainer: error: data: '{images}' is not allowed; {images}: ", err);
        Assert.True(err.Contains(message) || (orMessage is not null && err.Contains(orMessage)), err);
    }

    private static byte[] Replace(byte[] bytes, string from, string to)
    {
        var text = System.Text.Encoding.Latin1.GetString(bytes);
        int at = text.IndexOf(from, StringComparison.Ordinal);
        // Keeps the header's length: the replacement eats into the padding spaces before its newline.
        var header = text[..at] + to + text[(at + from.Length)..];
        int newline = text.IndexOf('\n');
        header = header.Remove(newline, to.Length - from.Length);
        return System.Text.Encoding.Latin1.GetBytes(header);
    }

    private static byte[] V2WithHeaderLength(byte[] v1, uint length)
    {
        var v2 = new byte[v1.Length + 2];
        v1.AsSpan(0, 8).CopyTo(v2);
        v2[6] = 2;
        BinaryPrimitives.WriteUInt32LittleEndian(v2.AsSpan(8), length);
        v1.AsSpan(10).CopyTo(v2.AsSpan(12));
        return v2;
    }
}
