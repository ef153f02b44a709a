using System.Globalization;
using System.Text.Json;
using Trainer.Client;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A full-batch softmax cross-entropy classifier trained end to end through `trainer train` on its
/// embedded silo, on the small Fashion-MNIST fixture read as IDX: the loss goes down, and every step's
/// loss is the single-process trainer's, bit for bit.
/// </summary>
public sealed class CliClassifierTests
{
    private const int Steps = 25;

    private static readonly string[] Options =
        ["--data", $"idx:{Cli.SmallFashionMnist}", "--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce",
         "--optimizer", "adam", "--lr", "0.003", "--init", "he", "--batch", "512", "--steps", $"{Steps}", "--workers", "2"];

    [Fact]
    public async Task FullBatchCrossEntropyJobOnIdxData_LearnsWithTheSingleProcessLosses()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. Options, "--json"]);

        Assert.True(code == 0, err);
        var events = Cli.JsonLines(output);
        var losses = events.Where(e => e.GetProperty("event").GetString() == "step").Select(e => e.GetProperty("loss").GetDouble()).ToArray();
        var expected = Expected();
        Assert.Equal(expected, losses);
        // Mean CE starts near ln 10 ≈ 2.3 for a fresh classifier and must fall well below it.
        Assert.InRange(losses[0], 1.5, 4.0);
        Assert.True(losses[^1] < 0.5 * losses[0], $"the loss went from {losses[0]:R} to only {losses[^1]:R} in {Steps} steps");
        Assert.Equal("completed", events[^1].GetProperty("event").GetString());
    }

    [Fact]
    public async Task FullBatchCrossEntropyJob_PrintsTheModelTheIdxDataAndTheFinalLoss()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. Options]);

        Assert.True(code == 0, err);
        Assert.Contains("784-32-10 relu ce bias, 2 workers, batch 512, 25 steps, lr 0.003", output);
        Assert.Contains($"; data idx:{Cli.SmallFashionMnist} (512 samples, 128 test); init he, seed 0", output);
        Assert.Contains($"final loss {Expected()[^1].ToString("G10", CultureInfo.InvariantCulture)} after {Steps} steps", output);
    }

    /// <summary>The same job in one process: the fixture as the CLI reads it, He-initialised from seed 0.</summary>
    private static double[] Expected()
    {
        var model = new ModelSpec([784, 32, 10], Activation.Relu, LossKind.CrossEntropy, bias: true);
        var data = new JobArguments { Data = $"idx:{Cli.SmallFashionMnist}" }.LoadData(model)!.Train;
        var spec = new TrainingSpec
        {
            Model = model, LearningRate = 0.003, Batch = 512, Steps = Steps, Workers = 2, Init = InitKind.He,
            Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam },
        };
        return Jobs.Local(spec, data).Losses;
    }
}
