using System.Text.Json;
using Trainer.Core.Tests;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A data-parallel job's weights do not depend on its worker count: the workload F (Fashion-MNIST,
/// 784-256-128-10 relu, cross-entropy, Adam, mini-batches of 128), one epoch through `trainer train` on its
/// embedded silo with 1, 2 and 3 workers, saves byte-identical weight files and prints the same losses.
/// </summary>
public sealed class CliWorkerCountBitsTests
{
    private static string[] Options(string folder, int workers, string save) =>
        ["train", "--data", $"idx:{folder}", "--model", "784-256-128-10", "--activation", "relu", "--bias", "--loss", "ce",
         "--optimizer", "adam", "--lr", "1e-3", "--batch", "128", "--epochs", "1", "--workers", $"{workers}", "--save", $"npy:{save}", "--json"];

    [Fact]
    public async Task FashionMnistEpoch_OnOneTwoAndThreeWorkers_SavesByteIdenticalWeights()
    {
        string folder = FashionMnist.RequireFolder();
        var runs = new List<(int Workers, string Save, double[] Losses, double Accuracy)>();
        foreach (int workers in new[] { 1, 2, 3 })
        {
            string save = Cli.TempFolder();
            var (code, output, err) = await Cli.RunAsync(Options(folder, workers, save));
            Assert.True(code == 0, $"{workers} workers: exit {code}: {err}");
            var events = Cli.JsonLines(output);
            var losses = events.Where(e => e.GetProperty("event").GetString() == "step").Select(e => e.GetProperty("loss").GetDouble()).ToArray();
            var completed = events.Single(e => e.GetProperty("event").GetString() == "completed");
            runs.Add((workers, save, losses, completed.GetProperty("test_accuracy").GetDouble()));
        }

        var one = runs[0];
        Assert.Equal(469, one.Losses.Length);   // ceil(60,000 / 128) steps, the last batch of 96 kept
        Assert.True(one.Accuracy > 0.80, $"one epoch should reach 80% test accuracy; got {one.Accuracy:P2}");
        Assert.Equal(["b1.npy", "b2.npy", "b3.npy", "model.json", "w1.npy", "w2.npy", "w3.npy"], Directory.GetFiles(one.Save).Select(Path.GetFileName).Order());
        // model.json names its job, which is each run's own.
        var files = Directory.GetFiles(one.Save, "*.npy").Select(Path.GetFileName).Order().ToArray();
        foreach (var other in runs.Skip(1))
        {
            Assert.True(one.Losses.SequenceEqual(other.Losses), $"{other.Workers} workers printed other losses than 1 worker");
            Assert.Equal(one.Accuracy, other.Accuracy);
            foreach (var file in files)
                Assert.True(File.ReadAllBytes(Path.Combine(one.Save, file!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(other.Save, file!))),
                    $"{file} of {other.Workers} workers differs from 1 worker's");
        }
    }
}
