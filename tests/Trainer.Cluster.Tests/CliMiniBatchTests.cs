using System.Text.Json;
using Trainer.Client;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `trainer train --batch B --epochs E` on real data goes through it in epochs of shuffled
/// mini-batches: the job line says how, the step count is the epochs' batches, every step's loss is
/// the single-process trainer's, and options that cannot go together are refused before anything runs.
/// </summary>
public sealed class CliMiniBatchTests
{
    // The fixture's 512 training images in batches of 48: ten of 48 and a last of 32 an epoch.
    private static readonly string[] Options =
        ["--data", $"idx:{Cli.SmallFashionMnist}", "--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce",
         "--optimizer", "adam", "--lr", "0.003", "--init", "he", "--workers", "3", "--seed", "5"];

    [Fact]
    public async Task EpochsOfMiniBatches_RunTheirBatchesSteps_WithTheSingleProcessLosses()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. Options, "--batch", "48", "--epochs", "2", "--json"]);

        Assert.True(code == 0, err);
        var events = Cli.JsonLines(output);
        var losses = events.Where(e => e.GetProperty("event").GetString() == "step").Select(e => e.GetProperty("loss").GetDouble()).ToArray();
        Assert.Equal(Expected(steps: 22, dropLast: false), losses);
        Assert.Equal(22, events[^1].GetProperty("steps").GetInt32());
    }

    [Fact]
    public async Task TheJobLine_SaysHowTheDataIsCutIntoBatches()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. Options, "--batch", "48", "--epochs", "1", "--drop-last", "--progress", "plain"]);

        Assert.True(code == 0, err);
        Assert.Contains("784-32-10 relu ce bias, 3 workers, mini-batches of 48 from 512 samples (10 an epoch, 32 left out each), 10 steps (1 epoch), lr 0.003", output);
        Assert.Contains("after 10 steps", output);
    }

    [Theory]
    [InlineData(new[] { "--batch", "48", "--epochs", "2", "--steps", "5" }, "epochs: '2' is not allowed", "without --steps")]
    [InlineData(new[] { "--batch", "48", "--epochs", "0" }, "epochs: '0' is not allowed", "from 1")]
    [InlineData(new[] { "--batch", "512", "--drop-last" }, "drop-last", "only with mini-batches")]
    public async Task OptionsThatCannotGoTogether_AreRefused_BeforeAnythingRuns(string[] extra, string named, string allowed)
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. Options, .. extra]);

        Assert.Equal(2, code);
        Assert.Contains(named, err);
        Assert.Contains(allowed, err);
        Assert.DoesNotContain("job ", output);
    }

    /// <summary>The same job in one process: the fixture as the CLI reads it, He-initialised from seed 5.</summary>
    private static double[] Expected(int steps, bool dropLast)
    {
        var model = new ModelSpec([784, 32, 10], Activation.Relu, LossKind.CrossEntropy, bias: true);
        var data = new JobArguments { Data = $"idx:{Cli.SmallFashionMnist}" }.LoadData(model)!.Train;
        var spec = new TrainingSpec
        {
            Model = model, LearningRate = 0.003, Batch = 48, Samples = data.Count, DropLast = dropLast, Steps = steps, Workers = 3, Seed = 5,
            Init = InitKind.He, Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam },
        };
        return Jobs.Local(spec, data).Losses;
    }
}
