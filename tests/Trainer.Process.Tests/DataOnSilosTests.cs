namespace Trainer.Process.Tests;

/// <summary>
/// `trainer train --data-on-silos` through the real CLI on two silo processes: the silos read the
/// fixture's IDX files themselves, and the job prints the same losses, evaluations and test score, and
/// saves the same weight bytes, as the job whose client uploaded the rows; and once they have ended,
/// each silo gives the memory they used back.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class DataOnSilosTests
{
    [Fact]
    public async Task DataReadByTheSiloProcesses_TrainsTheUploadedJobsWeights_AndPrintsItsOutput()
    {
        await using var cluster = await LocalCluster.CreateAsync(silos: 2, "--blas-threads 1 --Trainer:IdleCollectionDelay=00:00:00.5");
        await cluster.StartAsync();
        string data = $"idx:{Path.Combine(Repo.Root, "tests", "fixtures", "fashion-mnist-small")}";
        string[] job = ["train", "--data", data, "--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce", "--optimizer", "adam",
            "--lr", "0.003", "--batch", "64", "--epochs", "2", "--val-fraction", "0.25", "--workers", "2", "--json"];
        string uploaded = Path.Combine(cluster.Folder, "uploaded"), onSilos = Path.Combine(cluster.Folder, "on-silos");

        // Both at once: the suite is near its time limit, and two jobs on the cluster change neither's bits.
        var both = await Task.WhenAll(cluster.TrainerAsync([.. job, "--save", $"npy:{uploaded}"]), cluster.TrainerAsync([.. job, "--data-on-silos", "--save", $"npy:{onSilos}"]));
        var (reference, run) = (both[0], both[1]);

        Assert.True(reference.Code == 0, reference.ToString());
        Assert.True(run.Code == 0, run.ToString());
        // Every line but the job's id and its time: 12 steps, a validation and a test score after each epoch, the completed event.
        Assert.Equal(Comparable(reference.Out), Comparable(run.Out));
        Assert.Equal(12, TrainJson.StepLosses(run.Out).Length);
        Assert.True(TrainJson.FinalEvent(run.Out).GetProperty("test_accuracy").GetDouble() > 0.5, run.Out);
        foreach (var file in new[] { "w1.npy", "b1.npy", "w2.npy", "b2.npy" })
            Assert.True(File.ReadAllBytes(Path.Combine(uploaded, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(onSilos, file))),
                $"{file} of the job that read its data on the silos differs from the uploaded job's");
        // The silos say where they read the rows from; the uploaded pixels stayed bytes on the silos.
        Assert.Contains("read from files on this silo", cluster.LogLines("Worker "));
        Assert.Contains("(uploaded as uint8, held once per silo)", cluster.LogLines("Worker "));
        // With both jobs ended each silo runs none, and gives the memory they used back (IdleMemory).
        const string Collected = "No job runs in this process: a full collection gave its free memory back";
        await Poll.UntilAsync(() => Task.FromResult(cluster.SiloLogging(Collected)), silos => silos == "silo 0, silo 1", TimeSpan.FromSeconds(60), silos => $"logged by {silos}");
    }

    private static string[] Comparable(string jsonLines) =>
    [
        .. jsonLines.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => System.Text.RegularExpressions.Regex.Replace(line, "\"(job|seconds|steps_per_second)\":(\"[^\"]*\"|[0-9.eE+-]+)", "\"$1\":_")),
    ];
}
