using Trainer.Client;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `trainer train --data` on its embedded silo reads the files in place (that silo is the command's own
/// process): the job is sent the files' absolute paths and no rows, the silo's grains read the files the
/// command opened and checked, and the job ends with the bits of the same job uploaded to a running cluster.
/// </summary>
public sealed class CliInPlaceDataTests : IAsyncLifetime
{
    private LoopbackSilo _silo = null!;

    public async ValueTask InitializeAsync() => _silo = await LoopbackSilo.StartAsync(TestContext.Current.CancellationToken);

    public ValueTask DisposeAsync() => _silo.DisposeAsync();

    // Relative, as a user types it: an embedded silo reads it from this process's working directory.
    private static string Fixture => $"idx:{Path.GetRelativePath(Environment.CurrentDirectory, Cli.SmallFashionMnist)}";

    private static string[] Job(string save) =>
        ["train", "--data", Fixture, "--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce", "--optimizer", "adam",
         "--lr", "3e-3", "--batch", "64", "--epochs", "2", "--val-fraction", "0.125", "--workers", "2", "--save", $"npy:{save}", "--json"];

    [Fact]
    public async Task EmbeddedTrain_ReadingTheFilesInPlace_EndsWithTheUploadedJobsBits()
    {
        string inPlace = Cli.TempFolder(), uploaded = Cli.TempFolder();
        var here = await Cli.RunAsync(Job(inPlace));
        var there = await Cli.RunAsync([.. Job(uploaded), "--gateway", _silo.Gateway]);
        Assert.True(here.Code == 0, here.Err);
        Assert.True(there.Code == 0, there.Err);

        double[] Losses(string output) => [.. Cli.Events(output, "step").Select(e => e.GetProperty("loss").GetDouble())];
        string[] Evals(string output) => [.. Cli.Events(output, "eval").Select(e => e.GetRawText())];
        Assert.Equal(14, Losses(here.Out).Length);   // 2 epochs of ceil(448 / 64) steps: 64 of the 512 rows held out
        Assert.Equal(Losses(there.Out), Losses(here.Out));
        Assert.Equal(Evals(there.Out), Evals(here.Out));
        foreach (var file in Directory.GetFiles(uploaded, "*.npy").Select(Path.GetFileName))
            Assert.True(File.ReadAllBytes(Path.Combine(uploaded, file!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(inPlace, file!))), $"{file} differs");
    }

    [Fact]
    public void InPlaceData_SendsTheAbsolutePathsAndNoRows_AndHoldsTheFilesOpenUntilDisposed()
    {
        var arguments = CliOptions.JobArguments(new Commands(TextWriter.Null, TextWriter.Null).Build().Parse(Job(Cli.TempFolder())));
        var data = InPlaceData.Open(arguments)!;
        Assert.Equal($"idx:{Cli.SmallFashionMnist}", data.Submission.SiloData!.Data);
        Assert.Null(data.Submission.Data);
        Assert.Equal(448, data.Submission.Spec.ResolvedSamples);
        Assert.Equal(128, data.Submission.Spec.TestSamples);
        Assert.Equal(4, data.Files.OpenCount);   // train and t10k images and labels
        data.Dispose();
        Assert.Equal(0, data.Files.OpenCount);

        // Synthetic data has no files; typed --data-on-silos keeps its own rules (absolute paths every silo can see).
        Assert.Null(InPlaceData.Open(arguments with { Data = null }));
        Assert.Null(InPlaceData.Open(arguments with { DataOnSilos = true }));
    }

    [Fact]
    public async Task EmbeddedSplitJob_ReadingItsDataInPlace_IsScoredOnItsTestSet()
    {
        // --data-on-silos refuses a split job with a test set (the client scores it from files it may not see); in place it can.
        var (code, output, err) = await Cli.RunAsync("train", "--data", Fixture, "--model", "784-32-10", "--activation", "relu", "--bias",
            "--loss", "ce", "--lr", "0.05", "--steps", "5", "--workers", "2", "--parallel", "split");
        Assert.True(code == 0, err);
        Assert.Contains("test: 128 samples, loss ", output);
    }
}
