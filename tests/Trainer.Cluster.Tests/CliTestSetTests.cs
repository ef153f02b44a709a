using System.Globalization;
using System.Text.Json;
using Trainer.Client;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `trainer train` on data with a test set (idx t10k files): the job scores its weights on it after
/// every epoch (an eval event / line each) and its last step, and the completed event and the last
/// line give that score, each the single-process run's weights' to the bit; and --init's default
/// suits the data (the seed's N(0,1) on synthetic data, He for relu on real data).
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
        var lines = Cli.JsonLines(output);
        var completed = lines[^1];
        var scores = Expected();
        var expected = scores[^1];
        // 512 images in batches of 64: eight steps an epoch, an evaluation after steps 8 and 16.
        var evals = lines.Where(e => e.GetProperty("event").GetString() == "eval").ToArray();
        Assert.Equal([8, 16], evals.Select(e => e.GetProperty("step").GetInt32()));
        Assert.Equal([1, 2], evals.Select(e => e.GetProperty("epoch").GetInt32()));
        Assert.Equal(scores.Select(s => s.Accuracy), evals.Select(e => e.GetProperty("accuracy").GetDouble()));
        Assert.Equal(scores.Select(s => s.Loss), evals.Select(e => e.GetProperty("loss").GetDouble()));
        Assert.Equal("completed", completed.GetProperty("event").GetString());
        Assert.Equal(expected.Samples, completed.GetProperty("test_samples").GetInt32());
        Assert.Equal(expected.Loss, completed.GetProperty("test_loss").GetDouble());
        Assert.Equal(expected.Accuracy, completed.GetProperty("test_accuracy").GetDouble());

        (code, output, err) = await Cli.RunAsync(["train", .. Options, "--progress", "plain"]);
        Assert.True(code == 0, err);
        Assert.Contains($"epoch 1 (step 8): test loss {scores[0].Loss.ToString("G6", CultureInfo.InvariantCulture)}, accuracy {(100 * scores[0].Accuracy).ToString("F2", CultureInfo.InvariantCulture)}%", output);
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

    /// <summary>The same job in one process, its weights scored on the fixture's 128 test images after steps 8 and 16.</summary>
    private static EvaluationResult[] Expected()
    {
        var model = new ModelSpec([784, 32, 10], Activation.Relu, LossKind.CrossEntropy, bias: true);
        var loaded = new JobArguments { Data = $"idx:{Cli.SmallFashionMnist}" }.LoadData(model)!;
        var spec = new TrainingSpec
        {
            Model = model, LearningRate = 0.003, Batch = 64, Samples = loaded.Train.Count, Steps = 16, Workers = 2,
            Init = InitKind.He, Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam },
        };
        var trainer = new LocalTrainer(spec, loaded.Train, Initializer.Create(ParameterLayout.For(model), InitKind.He, 0));
        var scores = new List<EvaluationResult>();
        for (int step = 1; step <= spec.Steps; step++)
        {
            trainer.Step();
            if (step % 8 == 0) scores.Add(new Evaluation(model).Evaluate(trainer.Parameters, loaded.Test!));
        }
        return [.. scores];
    }

    [Fact]
    public async Task ATestSetFromAnotherFolder_IsScoredEveryNSteps_AndAfterTheEpochsLastStep()
    {
        // The fixture's 128 test images as x.npy and one-hot y.npy in a folder of their own.
        var model = new ModelSpec([784, 32, 10], Activation.Relu, LossKind.CrossEntropy, bias: true);
        var test = new JobArguments { Data = $"idx:{Cli.SmallFashionMnist}" }.LoadData(model)!.Test!;
        var folder = Directory.CreateTempSubdirectory("trainer-test-set-").FullName;
        using (var x = File.Create(Path.Combine(folder, "x.npy"))) Trainer.Core.Data.Npy.Write(x, test.X, test.Count, test.InputSize);
        using (var y = File.Create(Path.Combine(folder, "y.npy"))) Trainer.Core.Data.Npy.Write(y, test.Y, test.Count, test.OutputSize);

        var (code, output, err) = await Cli.RunAsync(["train", .. Options[..^4], "--epochs", "1", "--workers", "2", "--test", $"npy:{folder}", "--eval-every", "3", "--json"]);

        Assert.True(code == 0, err);
        var evals = Cli.Events(output, "eval");
        // Every 3 steps, and after step 8, the epoch's (and the job's) last.
        Assert.Equal([3, 6, 8], evals.Select(e => e.GetProperty("step").GetInt32()));
        Assert.All(evals, e => Assert.Equal(("test", 1), (e.GetProperty("split").GetString(), e.GetProperty("epoch").GetInt32())));
        var completed = JsonDocument.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
        Assert.Equal(test.Count, completed.GetProperty("test_samples").GetInt32());
        var (refused, _, error) = await Cli.RunAsync(["train", "--steps", "3", "--eval-every", "2"]);
        Assert.Equal(2, refused);
        Assert.Contains("eval-every: '2' is not allowed; allowed only with a test set", error);
    }

    [Fact]
    public async Task ASplitJob_ScoresItsTestSetAfterItsLastStep_WithAnEvalEvent_AndRefusesEvalEvery()
    {
        // Full batches of the fixture's 512 images, the first layer split over 2 workers.
        string[] split = ["--data", $"idx:{Cli.SmallFashionMnist}", "--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce",
            "--optimizer", "adam", "--lr", "0.003", "--steps", "3", "--workers", "2", "--parallel", "split"];

        var (code, output, err) = await Cli.RunAsync(["train", .. split, "--json"]);

        Assert.True(code == 0, err);
        var eval = Cli.Events(output, "eval").Single();
        var completed = Cli.Events(output, "completed").Single();
        Assert.Equal((3, "test"), (eval.GetProperty("step").GetInt32(), eval.GetProperty("split").GetString()));
        Assert.Equal(completed.GetProperty("test_accuracy").GetDouble(), eval.GetProperty("accuracy").GetDouble());
        Assert.Equal(completed.GetProperty("test_loss").GetDouble(), eval.GetProperty("loss").GetDouble());
        (code, output, err) = await Cli.RunAsync(["train", .. split, "--eval-every", "2"]);
        Assert.Equal(2, code);
        Assert.Contains("eval-every: '2' is not allowed; allowed only with --parallel data", err);
    }

    [Fact]
    public async Task ATestSetOfAnotherTargetWidth_OrAMissingOne_IsRefusedBeforeTheJobStarts_NamingTest()
    {
        // The fixture's test images with one-hot rows of 3 classes, against training rows of 10.
        var model = new ModelSpec([784, 32, 10], Activation.Relu, LossKind.CrossEntropy, bias: true);
        var test = new JobArguments { Data = $"idx:{Cli.SmallFashionMnist}" }.LoadData(model)!.Test!;
        var folder = Directory.CreateTempSubdirectory("trainer-test-set-").FullName;
        var threeClasses = new double[test.Count * 3];
        for (int i = 0; i < test.Count; i++) threeClasses[i * 3 + i % 3] = 1;
        using (var x = File.Create(Path.Combine(folder, "x.npy"))) Trainer.Core.Data.Npy.Write(x, test.X, test.Count, test.InputSize);
        using (var y = File.Create(Path.Combine(folder, "y.npy"))) Trainer.Core.Data.Npy.Write(y, threeClasses, test.Count, 3);

        var (code, output, err) = await Cli.RunAsync(["train", .. Options, "--test", $"npy:{folder}", "--progress", "plain"]);

        Assert.Equal(2, code);
        Assert.Contains($"test: 'npy:{folder}' is not allowed; its rows have 784 inputs and 3 targets per sample, the training rows of idx:{Cli.SmallFashionMnist} 784 and 10; they must be the same", err);
        Assert.DoesNotContain("job job-", output);
        Assert.DoesNotContain("retrying", err);

        string missing = Path.Combine(folder, "missing");
        (code, output, err) = await Cli.RunAsync(["train", .. Options, "--test", $"npy:{missing}", "--json"]);

        Assert.Equal(2, code);
        var error = Cli.JsonLines(output).Single();
        Assert.Equal(("error", "test"), (error.GetProperty("event").GetString(), error.GetProperty("field").GetString()));
        Assert.Contains($"test: 'npy:{missing}' is not allowed; {Path.Combine(missing, "x.npy")} does not exist", err);
    }

}
