using System.Globalization;
using System.Text.Json;
using Trainer.Client;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `trainer train` on data with a test set (idx t10k files) ends by evaluating the trained weights on
/// it: the line and the completed event give the test loss and accuracy of the single-process run's
/// weights; and --init's default suits the data (the seed's N(0,1) on synthetic data, He for relu on real data).
/// </summary>
public sealed class CliTestSetTests
{
    private static readonly string[] Options =
        ["--data", $"idx:{Cli.SmallFashionMnist}", "--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce",
         "--optimizer", "adam", "--lr", "0.003", "--batch", "64", "--epochs", "2", "--workers", "2"];

    [Fact]
    public async Task Training_EndsWithTheTestSetsLossAndAccuracy_OfTheTrainedWeights()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. Options, "--json"]);

        Assert.True(code == 0, err);
        var completed = JsonDocument.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
        var expected = Expected();
        Assert.Equal("completed", completed.GetProperty("event").GetString());
        Assert.Equal(expected.Samples, completed.GetProperty("test_samples").GetInt32());
        Assert.Equal(expected.Loss, completed.GetProperty("test_loss").GetDouble());
        Assert.Equal(expected.Accuracy, completed.GetProperty("test_accuracy").GetDouble());

        (code, output, err) = await Cli.RunAsync(["train", .. Options, "--progress", "plain"]);
        Assert.True(code == 0, err);
        Assert.EndsWith($"test: {expected.Samples} samples, loss {expected.Loss.ToString("G10", CultureInfo.InvariantCulture)}, accuracy {(100 * expected.Accuracy).ToString("F2", CultureInfo.InvariantCulture)}%",
            output.TrimEnd());
        // --init auto on real data with relu layers.
        Assert.Contains("; init he, seed 0", output);
    }

    [Fact]
    public async Task TheDefaultInit_OnSyntheticData_IsTheSeedsNormal()
    {
        var (code, output, err) = await Cli.RunAsync(["train", "--steps", "3", "--progress", "plain"]);

        Assert.True(code == 0, err);
        Assert.Contains("; init normal, seed 0", output);
        Assert.DoesNotContain("test:", output);
    }

    [Fact]
    public async Task AnUnknownInit_IsRefused_NamingAuto()
    {
        var (code, _, err) = await Cli.RunAsync(["train", "--init", "kaiming", "--steps", "3"]);

        Assert.Equal(2, code);
        Assert.Contains("init: 'kaiming' is not allowed; allowed: auto, normal, xavier, he, or npy:DIR", err);
    }

    /// <summary>The same job in one process, then its weights on the fixture's 128 test images.</summary>
    private static EvaluationResult Expected()
    {
        var model = new ModelSpec([784, 32, 10], Activation.Relu, LossKind.CrossEntropy, bias: true);
        var loaded = new JobArguments { Data = $"idx:{Cli.SmallFashionMnist}" }.LoadData(model)!;
        var spec = new TrainingSpec
        {
            Model = model, LearningRate = 0.003, Batch = 64, Samples = loaded.Train.Count, Steps = 16, Workers = 2,
            Init = InitKind.He, Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam },
        };
        var (_, parameters) = Jobs.Local(spec, loaded.Train);
        return new Evaluation(model).Evaluate(parameters, loaded.Test!);
    }
}
