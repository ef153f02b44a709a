using System.Globalization;
using System.Text.Json;
using System.Xml.Linq;
using Trainer.Client;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `trainer train --val-fraction f [--early-stopping P]`: the held-out rows are the ones the documented
/// rule picks (restated here), scored after every epoch as eval events with "split":"val" and plain
/// lines, to the bit of a single-process run on the same rows; early stopping ends a job built to
/// overfit where that run's validation losses say, and the job's saved weights are its best step's.
/// Bad values exit 2 naming the option.
/// </summary>
public sealed class CliValidationTests
{
    private static readonly ModelSpec Model = new([784, 32, 10], Activation.Relu, LossKind.CrossEntropy, bias: true);
    private static readonly string[] Fixture =
        ["--data", $"idx:{Cli.SmallFashionMnist}", "--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce",
         "--optimizer", "adam", "--lr", "0.003", "--workers", "2"];

    [Fact]
    public async Task AValidationFraction_IsScoredAfterEveryEpochBeforeTheTestSet_AsTheSingleProcessRunOnTheHeldOutRowsScores()
    {
        var save = Cli.TempFolder();

        var (code, output, err) = await Cli.RunAsync(["train", .. Fixture, "--batch", "64", "--epochs", "2", "--val-fraction", "0.25", "--save", $"npy:{save}", "--json"]);

        Assert.True(code == 0, err);
        // 512 images: 128 held out, 384 left in batches of 64, six steps an epoch.
        var (spec, rows) = Job(validation: 128, batch: 64, steps: 12, patience: 0);
        var expected = Overfitting.Reference(spec, rows);
        var evals = Cli.Events(output, "eval");
        Assert.Equal([(6, "val"), (6, "test"), (12, "val"), (12, "test")], evals.Select(e => (e.GetProperty("step").GetInt32(), e.GetProperty("split").GetString())));
        Assert.Equal(expected.Evals.Select(e => (e.Epoch, e.Loss, e.Accuracy)),
            evals.Select(e => (e.GetProperty("epoch").GetInt32(), e.GetProperty("loss").GetDouble(), e.GetProperty("accuracy").GetDouble())));
        // Trained on the 384 rows alone, never on the held-out ones.
        Assert.Equal(expected.Final, NpyFiles.LoadParameters("init", save, Model));

        (code, output, err) = await Cli.RunAsync(["train", .. Fixture, "--batch", "64", "--epochs", "2", "--val-fraction", "0.25", "--progress", "plain"]);
        Assert.True(code == 0, err);
        var firstVal = expected.Evals[0];
        Assert.Contains($"epoch 1 (step 6): val loss {firstVal.Loss.ToString("G6", CultureInfo.InvariantCulture)}, accuracy {(100 * firstVal.Accuracy).ToString("F2", CultureInfo.InvariantCulture)}%", output);
        Assert.Contains("data idx:", output);
        Assert.Contains("(512 samples, 128 held out for validation, 128 test)", output);
        Assert.Contains("mini-batches of 64 from 384 samples", output);
    }

    [Fact]
    public async Task EarlyStopping_OnATinyTrainingSet_StopsWhereTheValidationLossesSay_AndKeepsTheBestStepsWeights()
    {
        var save = Cli.TempFolder();
        // 384 of the 512 images held out: 128 left to train on, in batches of 32, for up to 60 epochs.
        string[] options = [.. Fixture, "--batch", "32", "--epochs", "60", "--val-fraction", "0.75", "--early-stopping", "3"];
        var (spec, rows) = Job(validation: 384, batch: 32, steps: 240, patience: 3);
        var expected = Overfitting.Reference(spec, rows);
        var best = expected.Stopping!;
        int stoppedAt = expected.Losses.Length;
        Assert.True(best.Stopped && stoppedAt < spec.Steps && best.BestStep > 4, $"best step {best.BestStep}, stopped after {stoppedAt}");

        var (code, output, err) = await Cli.RunAsync(["train", .. options, "--save", $"npy:{save}", "--json"]);

        Assert.True(code == 0, err);
        var completed = Cli.Events(output, "completed").Single();
        var bestTest = expected.Evals.Single(e => e.Step == best.BestStep && e.Split == "test");
        Assert.Equal((stoppedAt, true, best.BestStep, (best.BestStep - 1) / 4 + 1, best.BestLoss),
            (completed.GetProperty("steps").GetInt32(), completed.GetProperty("stopped_early").GetBoolean(), completed.GetProperty("best_step").GetInt32(),
             completed.GetProperty("best_epoch").GetInt32(), completed.GetProperty("best_val_loss").GetDouble()));
        // The test score is the kept weights'.
        Assert.Equal((bestTest.Loss, bestTest.Accuracy), (completed.GetProperty("test_loss").GetDouble(), completed.GetProperty("test_accuracy").GetDouble()));
        var saved = NpyFiles.LoadParameters("init", save, Model);
        Assert.Equal(expected.Final, saved);
        // The saved weights' loss on the held-out rows, scored here, is the best validation loss.
        Assert.Equal(best.BestLoss, new Evaluation(Model).Evaluate(saved, rows.Slice(new Shard(0, 128, 384))).Loss);

        (code, output, err) = await Cli.RunAsync(["train", .. options, "--progress", "plain"]);
        Assert.True(code == 0, err);
        var lines = output.TrimEnd().Split('\n');
        Assert.Contains($"after {stoppedAt} steps", lines[^3]);
        Assert.Contains($"; stopped early after step {stoppedAt}: 3 evaluations in a row did not lower the validation loss of step {best.BestStep}, whose weights the job keeps", lines[^3]);
        Assert.Equal($"best weights: step {best.BestStep} (epoch {(best.BestStep - 1) / 4 + 1}), validation loss {best.BestLoss.ToString("G10", CultureInfo.InvariantCulture)}; stopped early, 3 evaluations without a lower one", lines[^2]);
        Assert.StartsWith($"test: 128 samples, loss {bestTest.Loss.ToString("G10", CultureInfo.InvariantCulture)}", lines[^1]);
    }

    [Fact]
    public async Task SyntheticData_HoldsOutPartOfItsDrawnRows_AndScoresThemWithoutAnAccuracy()
    {
        var plot = Path.Combine(Cli.TempFolder(), "loss.svg");

        var (code, output, err) = await Cli.RunAsync(["train", "--steps", "4", "--val-fraction", "0.25", "--plot", plot, "--json"]);

        Assert.True(code == 0, err);
        // The seed job's 64 rows, drawn in the client: 16 held out, every step on the other 48.
        var drawn = Synthetic.Data(64, 1000, 10, seed: 0);
        var (training, validation) = Split(drawn, 16, seed: 0);
        var spec = new TrainingSpec { Batch = 48, Steps = 4, ValidationSamples = 16 };
        var expected = Overfitting.Reference(spec, Concat(training, validation));
        var evals = Cli.Events(output, "eval");
        // Every step takes all 48 training rows, so every step ends an epoch, and is scored.
        Assert.Equal([1, 2, 3, 4], evals.Select(e => e.GetProperty("step").GetInt32()));
        Assert.Equal([1, 2, 3, 4], evals.Select(e => e.GetProperty("epoch").GetInt32()));
        Assert.All(evals, e => Assert.Equal(("val", JsonValueKind.Null), (e.GetProperty("split").GetString(), e.GetProperty("accuracy").ValueKind)));
        Assert.Equal(expected.Evals.Select(e => e.Loss), evals.Select(e => e.GetProperty("loss").GetDouble()));
        Assert.Equal(expected.Losses, Cli.Events(output, "step").Select(e => e.GetProperty("loss").GetDouble()));
        // The plot of the job draws its validation losses beside its training losses.
        Assert.Contains(LossPlotTests.Texts(XDocument.Load(plot)), text => text.EndsWith(" val loss", StringComparison.Ordinal));

        (code, output, err) = await Cli.RunAsync(["train", "--steps", "1", "--val-fraction", "0.25", "--progress", "plain"]);
        Assert.True(code == 0, err);
        Assert.Contains(", batch 48, ", output);
        Assert.Contains("data synthetic N(0,1), seed 0 (64 samples drawn, 16 held out for validation)", output);
        Assert.Contains($"epoch 1 (step 1): val loss ", output);
        Assert.DoesNotContain("accuracy", output);
    }

    [Fact]
    public async Task FullBatchEpochs_AreEachScored_SoEarlyStoppingCanStopThem()
    {
        // No --batch: each step takes all 384 training rows (128 held out), so each step is an epoch.
        var (code, output, err) = await Cli.RunAsync(["train", .. Fixture, "--epochs", "3", "--val-fraction", "0.25", "--json"]);

        Assert.True(code == 0, err);
        // The validation set, then the fixture's test set (the t10k files beside it), after every step.
        var evals = Cli.Events(output, "eval");
        Assert.Equal([(1, 1, "val"), (1, 1, "test"), (2, 2, "val"), (2, 2, "test"), (3, 3, "val"), (3, 3, "test")],
            evals.Select(e => (e.GetProperty("step").GetInt32(), e.GetProperty("epoch").GetInt32(), e.GetProperty("split").GetString())));
        Assert.Equal(3, Cli.Events(output, "step").Length);
    }

    [Fact]
    public async Task AJsonLogWithValidationEvents_IsPlottedWithThem()
    {
        var folder = Cli.TempFolder();
        var (code, output, err) = await Cli.RunAsync(["train", .. Fixture, "--batch", "128", "--epochs", "2", "--val-fraction", "0.25", "--json"]);
        Assert.True(code == 0, err);
        var log = Path.Combine(folder, "run.log");
        File.WriteAllText(log, output);
        var svg = Path.Combine(folder, "loss.svg");

        (code, _, err) = await Cli.RunAsync("plot", log, "--out", svg);

        Assert.True(code == 0, err);
        Assert.Superset(new HashSet<string> { "run.log val loss", "run.log val accuracy", "run.log test loss", "run.log test accuracy" }, LossPlotTests.Texts(XDocument.Load(svg)).ToHashSet());
    }

    [Theory]
    [InlineData("val-fraction: '1' is not allowed; allowed: a fraction of the training rows from 0 (none held out) up to, not including, 1, e.g. 0.1.", "--val-fraction", "1")]
    [InlineData("val-fraction: '-0.2' is not allowed; allowed: a fraction of the training rows from 0", "--val-fraction", "-0.2")]
    [InlineData("val-fraction: '0.9' is not allowed; it holds out 461 of the 512 samples, leaving 51: fewer than one batch of 64; lower --val-fraction or --batch.", "--val-fraction", "0.9", "--batch", "64")]
    [InlineData("early-stopping: '3' is not allowed; allowed only with a validation set (--val-fraction f above 0): it watches the validation loss.", "--early-stopping", "3")]
    [InlineData("early-stopping: '-1' is not allowed; allowed: a whole number of evaluations >= 1", "--early-stopping", "-1", "--val-fraction", "0.1")]
    [InlineData("parallel: 'split' is not allowed; allowed only without a validation set (--val-fraction)", "--val-fraction", "0.1", "--parallel", "split")]
    public async Task ABadValue_ExitsWith2_NamingTheOptionTheValueAndWhatIsAllowed(string message, params string[] options)
    {
        var (code, _, err) = await Cli.RunAsync(["train", .. Fixture, .. options]);

        Assert.Equal(2, code);
        Assert.StartsWith($"trainer: error: {message}", err);
    }

    [Fact]
    public async Task AFractionHoldingOutEveryDrawnRow_IsRefused()
    {
        // ceil(0.99 x 64) = 64: the seed job's rows, all held out.
        var (code, _, err) = await Cli.RunAsync("train", "--val-fraction", "0.99");

        Assert.Equal(2, code);
        Assert.Equal("trainer: error: val-fraction: '0.99' is not allowed; it holds out 64 of the 64 samples, leaving none to train on.", err.TrimEnd());
    }

    /// <summary>The fixture's job as the CLI submits it: its rows split by the documented rule, then the single-process spec.</summary>
    private static (TrainingSpec Spec, Dataset Rows) Job(int validation, int batch, int steps, int patience)
    {
        var loaded = new JobArguments { Data = $"idx:{Cli.SmallFashionMnist}" }.LoadData(Model)!;
        var (training, held) = Split(loaded.Train, validation, seed: 0);
        var spec = new TrainingSpec
        {
            Model = Model, LearningRate = 0.003, Batch = batch, Samples = training.Count, Steps = steps, Workers = 2, Init = InitKind.He,
            Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam }, ValidationSamples = validation, TestSamples = loaded.Test!.Count, EarlyStopping = patience,
        };
        return (spec, Concat(training, held, loaded.Test));
    }

    /// <summary>
    /// The documented rule, restated: the first <paramref name="validation"/> rows of a Fisher-Yates
    /// shuffle driven by System.Random(seed · 1,000,003 - 1) are held out; both sets keep file order.
    /// </summary>
    private static (Dataset Training, Dataset Validation) Split(Dataset data, int validation, int seed)
    {
        var order = Enumerable.Range(0, data.Count).ToArray();
        var random = new Random(seed * 1_000_003 - 1);
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        var held = order[..validation].ToHashSet();
        Dataset Rows(IEnumerable<int> rows) => Concat([.. rows.Select(r => data.Slice(new Shard(0, r, 1)))]);
        return (Rows(Enumerable.Range(0, data.Count).Where(r => !held.Contains(r))), Rows(Enumerable.Range(0, data.Count).Where(held.Contains)));
    }

    private static Dataset Concat(params Dataset[] parts) =>
        new([.. parts.SelectMany(p => p.X)], [.. parts.SelectMany(p => p.Y)], parts.Sum(p => p.Count), parts[0].InputSize, parts[0].OutputSize);
}
