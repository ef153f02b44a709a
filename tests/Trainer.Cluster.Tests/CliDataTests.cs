using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Trainer.Client;
using Trainer.Core.Data;
using Trainer.Core.Models;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `--data` as the command line reads it: npy class labels and idx folders become the rows a job
/// trains on, and every file a job cannot train on ends with exit code 2 and one line naming the
/// file (and the row, column and value where there is one), before any cluster is contacted.
/// </summary>
public sealed class CliDataTests
{
    [Fact]
    public void NpyClassLabels_AreSubmittedAsOneHotRowsOfTheModelsWidth()
    {
        var labels = Cli.TempFolder();
        var oneHot = Cli.TempFolder();
        var x = Synthetic.Data(5, 4, 1, seed: 2).X;
        CliBadInputTests.WriteNpy(labels, "x.npy", x, 5, 4);
        WriteInt64Labels(labels, [2, 0, 1, 2, 0]);
        CliBadInputTests.WriteNpy(oneHot, "x.npy", x, 5, 4);
        CliBadInputTests.WriteNpy(oneHot, "y.npy", [0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0], 5, 3);

        var fromLabels = Cli.Submission("--data", $"npy:{labels}", "--model", "4-3", "--loss", "ce", "--workers", "1");
        var fromOneHot = Cli.Submission("--data", $"npy:{oneHot}", "--model", "4-3", "--loss", "ce", "--workers", "1");

        Assert.Equal(3, fromLabels.Data!.OutputSize);
        Assert.Equal(fromOneHot.Data!.Y.Values.ToArray(), fromLabels.Data.Y.Values.ToArray());
        Assert.Equal(fromOneHot.Data.X.Values.ToArray(), fromLabels.Data.X.Values.ToArray());
    }

    [Fact]
    public async Task NpyLabelOutsideTheClasses_ExitsWith2_NamingFileRowValueAndRange()
    {
        var folder = Cli.TempFolder();
        CliBadInputTests.WriteNpy(folder, "x.npy", new double[4 * 4], 4, 4);
        WriteInt64Labels(folder, [0, 2, 3, 1]);

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"npy:{folder}", "--model", "4-3", "--loss", "ce", "--steps", "1");

        Assert.Equal(2, code);
        Assert.Contains($"{Path.Combine(folder, "y.npy")}: row 2 (counting from 0) has label 3; allowed: a class from 0 to 2 (the model has 3 outputs)", err);
    }

    [Fact]
    public async Task FloatClassLabels_ExitWith2_SayingToSaveThemAsIntegers()
    {
        var folder = Cli.TempFolder();
        CliBadInputTests.WriteNpy(folder, "x.npy", new double[4 * 4], 4, 4);
        CliBadInputTests.WriteNpy(folder, "y.npy", [0, 2, 1, 1], 4);

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"npy:{folder}", "--model", "4-3", "--loss", "ce", "--steps", "1");

        Assert.Equal(2, code);
        Assert.Contains("it is a 1-D float64 array; 1-D targets are class labels and must be integers", err);
        Assert.Contains("y.astype(np.int64)", err);
    }

    [Fact]
    public void NpyClassLabels_WithMse_TrainAsOneHotTargetsToo()
    {
        var folder = Cli.TempFolder();
        CliBadInputTests.WriteNpy(folder, "x.npy", new double[3 * 4], 3, 4);
        WriteInt64Labels(folder, [1, 0, 1]);

        var submission = Cli.Submission("--data", $"npy:{folder}", "--model", "4-2", "--loss", "mse", "--workers", "1");

        Assert.Equal([0.0, 1, 1, 0, 0, 1], submission.Data!.Y.Values.ToArray());
    }

    [Theory]
    [InlineData("x.npy", 3, 1, double.NaN, "x.npy: row 3, column 1 (counting from 0) is NaN; every value must be a finite number")]
    [InlineData("x.npy", 0, 3, double.PositiveInfinity, "x.npy: row 0, column 3 (counting from 0) is +infinity; every value must be a finite number")]
    [InlineData("y.npy", 4, 0, double.NegativeInfinity, "y.npy: row 4, column 0 (counting from 0) is -infinity; every value must be a finite number")]
    public async Task NaNOrInfinityInTheData_ExitsWith2_NamingFileRowAndColumn(string file, int row, int column, double value, string message)
    {
        var folder = Cli.TempFolder();
        var x = new double[5 * 4];
        var y = new double[5 * 2];
        (file == "x.npy" ? x : y)[row * (file == "x.npy" ? 4 : 2) + column] = value;
        CliBadInputTests.WriteNpy(folder, "x.npy", x, 5, 4);
        CliBadInputTests.WriteNpy(folder, "y.npy", y, 5, 2);

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"npy:{folder}", "--model", "4-2", "--steps", "1");

        Assert.Equal(2, code);
        Assert.Contains($"data: '{Path.Combine(folder, file)}' is not allowed; {Path.Combine(folder, message)}", err);
    }

    [Fact]
    public async Task TrailingBytesAfterAnNpysData_ExitWith2()
    {
        var folder = Cli.TempFolder();
        CliBadInputTests.WriteNpy(folder, "x.npy", new double[3 * 4], 3, 4);
        CliBadInputTests.WriteNpy(folder, "y.npy", new double[3 * 2], 3, 2);
        File.AppendAllText(Path.Combine(folder, "x.npy"), "extra");

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"npy:{folder}", "--model", "4-2", "--steps", "1");

        Assert.Equal(2, code);
        Assert.Contains("x.npy: 101 bytes after the header, but its shape (3, 4) float64 needs 96; the file has trailing bytes", err);
    }

    [Theory]
    [InlineData(new double[] { 1, 0, 0.5, 0.5, 2, -1 }, "row 2, column 0 (counting from 0) is 2; cross-entropy targets must be one-hot rows or probabilities")]
    [InlineData(new double[] { 1, 0, 0.5, 0.25, 0, 1 }, "row 1 (counting from 0) sums to 0.75; cross-entropy targets must be one-hot rows or probabilities summing to 1")]
    public async Task CrossEntropyTargetsThatAreNotDistributions_ExitWith2_NamingTheRow(double[] y, string message)
    {
        var folder = Cli.TempFolder();
        CliBadInputTests.WriteNpy(folder, "x.npy", new double[3 * 4], 3, 4);
        CliBadInputTests.WriteNpy(folder, "y.npy", y, 3, 2);

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"npy:{folder}", "--model", "4-2", "--loss", "ce", "--steps", "1");

        Assert.Equal(2, code);
        Assert.Contains($"{Path.Combine(folder, "y.npy")}: {message}", err);
    }

    [Fact]
    public async Task CrossEntropyOnSyntheticData_ExitsWith2_AskingForClassData()
    {
        var (code, _, err) = await Cli.RunAsync("train", "--loss", "ce", "--steps", "1");

        Assert.Equal(2, code);
        Assert.Contains("loss: 'ce' is not allowed; allowed only with class data: --data npy:DIR or idx:DIR", err);
    }

    [Fact]
    public void IdxFolder_LoadsTheTrainingRowsAndKeepsTheTestSet_PixelsDividedBy255()
    {
        var model = new ModelSpec([784, 32, 10], Activation.Relu, LossKind.CrossEntropy, bias: true);

        var loaded = new JobArguments { Data = $"idx:{Cli.SmallFashionMnist}" }.LoadData(model)!;
        var raw = new JobArguments { Data = $"idx:{Cli.SmallFashionMnist}", Scale = 1.0 }.LoadData(model)!;

        Assert.Equal((512, 784, 10), (loaded.Train.Count, loaded.Train.InputSize, loaded.Train.OutputSize));
        Assert.Equal((128, 784, 10), (loaded.Test!.Count, loaded.Test.InputSize, loaded.Test.OutputSize));
        // Train image 0 at (14, 14) is byte 217 and its label 9; test image 1 at (20, 13) is 236, label 2 (tests/reference/idx).
        Assert.Equal(217 / 255.0, loaded.Train.X[14 * 28 + 14]);
        Assert.Equal(217.0, raw.Train.X[14 * 28 + 14]);
        Assert.Equal(1.0, loaded.Train.Y[9]);
        Assert.Equal(236 / 255.0, loaded.Test.X[784 + 20 * 28 + 13]);
        Assert.Equal(1.0, loaded.Test.Y[10 + 2]);
        Assert.All(loaded.Train.X, v => Assert.InRange(v, 0.0, 1.0));
    }

    [Fact]
    public void IdxFolderWithoutTestFiles_HasNoTestSet_AndUncompressedFilesReadAlike()
    {
        var folder = Cli.TempFolder();
        foreach (var name in new[] { "train-images-idx3-ubyte", "train-labels-idx1-ubyte" })
            File.WriteAllBytes(Path.Combine(folder, name), Gunzip(Path.Combine(Cli.SmallFashionMnist, name + ".gz")));
        var model = new ModelSpec([784, 10], loss: LossKind.CrossEntropy);

        var plain = new JobArguments { Data = $"idx:{folder}" }.LoadData(model)!;
        var gzipped = new JobArguments { Data = $"idx:{Cli.SmallFashionMnist}" }.LoadData(model)!;

        Assert.Null(plain.Test);
        Assert.Equal(gzipped.Train.X, plain.Train.X);
        Assert.Equal(gzipped.Train.Y, plain.Train.Y);
    }

    [Fact]
    public async Task IdxLabelBeyondTheModelsOutputs_ExitsWith2_NamingFileRowValueAndRange()
    {
        var (code, _, err) = await Cli.RunAsync("train", "--data", $"idx:{Cli.SmallFashionMnist}", "--model", "784-32-5", "--loss", "ce", "--steps", "1");

        Assert.Equal(2, code);
        // Train label 0 is 9 (tests/reference/idx).
        Assert.Contains($"{Path.Combine(Cli.SmallFashionMnist, "train-labels-idx1-ubyte.gz")}: row 0 (counting from 0) has label 9; allowed: a class from 0 to 4 (the model has 5 outputs)", err);
    }

    [Theory]
    [InlineData("labels for images")]
    [InlineData("count mismatch")]
    [InlineData("truncated")]
    [InlineData("not gzip")]
    [InlineData("half a test set")]
    [InlineData("both plain and gz")]
    [InlineData("no folder")]
    public async Task BadIdxFiles_ExitWith2_NamingTheFileAndWhatWasExpected(string what)
    {
        var folder = Cli.TempFolder();
        foreach (var file in Directory.GetFiles(Cli.SmallFashionMnist, "*.gz")) File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        string images = Path.Combine(folder, "train-images-idx3-ubyte.gz"), labels = Path.Combine(folder, "train-labels-idx1-ubyte.gz");
        string expected;
        switch (what)
        {
            case "labels for images":
                File.Copy(labels, images, overwrite: true);
                expected = $"{images}: magic number 0x00000801 is not an images file (N, rows, cols)'s 0x00000803 (1 dimension(s) where 3 are expected)";
                break;
            case "count mismatch":
                File.Copy(Path.Combine(folder, "t10k-labels-idx1-ubyte.gz"), labels, overwrite: true);
                expected = $"it holds 512 images but {labels} holds 128 labels; they must be as many";
                break;
            case "truncated":
                var raw = Gunzip(images);
                WriteGzip(images, raw[..^100]);
                expected = $"{images}: the header promises (512 x 28 x 28) = 401408 bytes of data, but the file holds 401308; it is truncated";
                break;
            case "not gzip":
                File.WriteAllText(images, "not compressed at all");
                expected = $"{images}: not a readable gzip file";
                break;
            case "half a test set":
                File.Delete(Path.Combine(folder, "t10k-labels-idx1-ubyte.gz"));
                expected = $"{Path.Combine(folder, "t10k-labels-idx1-ubyte")}[.gz] does not exist; the folder must hold t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each plain or .gz (the t10k test set is optional, but not half of it)";
                break;
            case "both plain and gz":
                File.WriteAllBytes(labels[..^3], Gunzip(labels));
                expected = $"both {labels[..^3]} and {labels} exist; keep one of them";
                break;
            default:
                folder = Path.Combine(folder, "missing");
                expected = $"data: 'idx:{folder}' is not allowed; the folder does not exist";
                break;
        }

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"idx:{folder}", "--model", "784-32-10", "--loss", "ce", "--steps", "1");

        Assert.Equal(2, code);
        Assert.Contains(expected, err);
    }

    [Theory]
    [InlineData("npy", "0.5", "scale: '0.5' is not allowed; allowed only with --data idx:DIR")]
    [InlineData(null, "0.5", "scale: '0.5' is not allowed; allowed only with --data idx:DIR")]
    [InlineData("idx", "0", "scale: '0' is not allowed; allowed: a finite number greater than 0")]
    [InlineData("idx", "NaN", "scale: 'NaN' is not allowed; allowed: a finite number greater than 0")]
    [InlineData("idx", "1e307", "scale: '1E+307' is not allowed; allowed: a finite number greater than 0 (and 255 times it finite)")]
    public async Task ScaleOutsideIdxDataOrNotPositive_ExitsWith2(string? data, string scale, string message)
    {
        var npy = Cli.TempFolder();
        CliBadInputTests.WriteNpy(npy, "x.npy", new double[3 * 4], 3, 4);
        CliBadInputTests.WriteNpy(npy, "y.npy", new double[3 * 2], 3, 2);
        string[] dataArgs = data switch { "npy" => ["--data", $"npy:{npy}", "--model", "4-2"], "idx" => ["--data", $"idx:{Cli.SmallFashionMnist}", "--model", "784-10"], _ => [] };

        var (code, _, err) = await Cli.RunAsync(["train", .. dataArgs, "--scale", scale, "--steps", "1"]);

        Assert.Equal(2, code);
        Assert.Contains(message, err);
    }

    /// <summary>y.npy as numpy saves an int64 vector: the '&lt;i8' header, then the values little-endian.</summary>
    private static void WriteInt64Labels(string folder, long[] labels)
    {
        var stream = new MemoryStream();
        Npy.Write(stream, new double[labels.Length], labels.Length);
        var bytes = stream.ToArray();
        var header = Encoding.Latin1.GetString(bytes, 0, bytes.Length - 8 * labels.Length).Replace("'<f8'", "'<i8'");
        Encoding.Latin1.GetBytes(header).CopyTo(bytes, 0);
        for (int i = 0; i < labels.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(header.Length + 8 * i), labels[i]);
        File.WriteAllBytes(Path.Combine(folder, "y.npy"), bytes);
    }

    internal static byte[] Gunzip(string path)
    {
        using var gzip = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        var copy = new MemoryStream();
        gzip.CopyTo(copy);
        return copy.ToArray();
    }

    private static void WriteGzip(string path, byte[] data)
    {
        using var gzip = new GZipStream(File.Create(path), CompressionLevel.Fastest);
        gzip.Write(data);
    }
}
