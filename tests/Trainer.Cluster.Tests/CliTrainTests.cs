using System.Text.Json;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>`trainer train` end to end on its embedded silo.</summary>
public sealed class CliTrainTests
{
    [Fact]
    public async Task TrainJson_PrintsOneStepEventPerStep_ThenCompleted_WithTheSingleProcessLosses()
    {
        var (code, output, err) = await Cli.RunAsync("train", "--model", "20-8-3", "--batch", "13", "--steps", "6", "--workers", "3", "--seed", "7", "--lr", "1e-3", "--json");

        Assert.True(code == 0, err);
        var events = Cli.JsonLines(output);
        var expected = Jobs.Local(Jobs.Small(workers: 3, steps: 6));
        Assert.Equal(7, events.Length);
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal("step", events[i].GetProperty("event").GetString());
            Assert.Equal(i + 1, events[i].GetProperty("step").GetInt32());
            Assert.Equal(expected.Losses[i], events[i].GetProperty("loss").GetDouble());
        }
        var done = events[^1];
        Assert.Equal("completed", done.GetProperty("event").GetString());
        Assert.Equal(6, done.GetProperty("steps").GetInt32());
        Assert.Equal(expected.Losses[^1], done.GetProperty("final_loss").GetDouble());
        Assert.StartsWith("job-", done.GetProperty("job").GetString());
        Assert.True(done.GetProperty("seconds").GetDouble() > 0);
        Assert.True(done.GetProperty("steps_per_second").GetDouble() > 0);
        Assert.Equal("sgd", done.GetProperty("optimizer").GetString());
    }

    [Fact]
    public async Task ByDefault_TheSeedJobRunsDataParallel_SaysSo_AndGivesTheDataParallelLosses()
    {
        var (code, output, err) = await Cli.RunAsync("train", "--steps", "5", "--workers", "2");

        Assert.True(code == 0, err);
        Assert.Contains(", data parallel, optimizer sgd on the parameter server; data ", output);
        var expected = Jobs.Local(new TrainingSpec { Steps = 5, Workers = 2, Parallelism = Parallelism.Data });
        Assert.Contains($"final loss {expected.Losses[^1].ToString("G10", System.Globalization.CultureInfo.InvariantCulture)} after 5 steps", output);
    }

    [Fact]
    public async Task MoreWorkersThanTheAutomaticMicroShards_GetANoteThatTheirBitsDifferFromFewerWorkers_AndTheLossesOfThatCount()
    {
        // The seed's batch of 64: 2 micro-shards of 32 by the automatic rule; 3 workers cut it into 3.
        var (code, output, err) = await Cli.RunAsync("train", "--steps", "3", "--workers", "3");

        Assert.True(code == 0, err);
        Assert.Contains("trainer: note: 3 workers cut each batch into 3 micro-shards, not the automatic 2 (one per 32 samples of the batch, at most 4), "
            + "so the weights will not be the bits of this job on 1 to 2 workers; with --micro-shards 3 every worker count from 1 to 3 gives this run's bits", err);
        var three = Jobs.Local(new TrainingSpec { Steps = 3, Workers = 3, Parallelism = Parallelism.Data });
        Assert.Contains($"final loss {three.Losses[^1].ToString("G10", System.Globalization.CultureInfo.InvariantCulture)} after 3 steps", output);
        // What the note says: one worker with --micro-shards 3 gives the same bits, and one without it does not.
        Assert.Equal(three.Losses, Jobs.Local(new TrainingSpec { Steps = 3, Workers = 1, MicroShards = 3, Parallelism = Parallelism.Data }).Losses);
        Assert.NotEqual(three.Losses, Jobs.Local(new TrainingSpec { Steps = 3, Workers = 1, Parallelism = Parallelism.Data }).Losses);
        // A batch of 16 is one automatic micro-shard: the note names the one worker count it differs from.
        (code, _, err) = await Cli.RunAsync("train", "--steps", "1", "--batch", "16", "--workers", "2");
        Assert.True(code == 0, err);
        Assert.Contains("so the weights will not be the bits of this job on 1 worker; with --micro-shards 2 every worker count from 1 to 2 gives this run's bits", err);
    }

    [Theory]
    [InlineData("--workers", "2")]                       // within the automatic 2
    [InlineData("--workers", "3", "--micro-shards", "3")] // the count asked for
    [InlineData("--workers", "3", "--parallel", "split")] // no micro-shards
    public async Task AJobWhoseWorkerCountKeepsItsBits_GetsNoMicroShardNote(params string[] options)
    {
        var (code, _, err) = await Cli.RunAsync(["train", "--steps", "2", .. options]);

        Assert.True(code == 0, err);
        Assert.DoesNotContain("micro-shards", err);
    }

    [Fact]
    public async Task AnAdamModelOfMoreThan2To24Parameters_RunsOnOneParameterServer_OnTheEmbeddedSilo_AndSaysSo()
    {
        // 16.9M parameters: two shards by the rule for a cluster of several silos; one on a single silo.
        var (code, output, err) = await Cli.RunAsync("train", "--model", "2000-8400-10", "--optimizer", "adam", "--lr", "1e-3", "--batch", "4", "--steps", "2",
            "--workers", "2", "--checkpoint-every", "0", "--progress", "plain");

        Assert.True(code == 0, err);
        Assert.Contains(", data parallel, optimizer adam on the parameter server; data ", output);
        var expected = Jobs.Local(new TrainingSpec
        {
            Model = new ModelSpec([2000, 8400, 10]), Optimizer = new() { Kind = Trainer.Core.Optim.OptimizerKind.Adam }, LearningRate = 1e-3, Batch = 4, Steps = 2, Workers = 2,
        });
        Assert.Contains($"final loss {expected.Losses[^1].ToString("G10", System.Globalization.CultureInfo.InvariantCulture)} after 2 steps", output);
    }

    [Fact]
    public async Task ParallelSplit_TheSeedModelSplitsItsFirstLayer_SaysSo_AndGivesTheSplitRunsLosses()
    {
        var (code, output, err) = await Cli.RunAsync("train", "--steps", "5", "--workers", "2", "--parallel", "split");

        Assert.True(code == 0, err);
        Assert.Contains(", first layer split over 2 workers (model parallel; each worker applies the optimizer to its slice), optimizer sgd; data ", output);
        var expected = Jobs.Local(new TrainingSpec { Steps = 5, Workers = 2, Parallelism = Parallelism.SplitFirstLayer });
        Assert.Contains($"final loss {expected.Losses[^1].ToString("G10", System.Globalization.CultureInfo.InvariantCulture)} after 5 steps", output);
    }

    [Fact]
    public async Task NpyDataAndInit_TrainAndSave_TheSameWeightsAsOneProcess()
    {
        var data = Synthetic.Data(9, 6, 2, seed: 3);
        var model = new ModelSpec([6, 5, 2], Activation.Tanh, LossKind.Mse, bias: true);
        var initial = Initializer.Create(ParameterLayout.For(model), InitKind.Xavier, seed: 11);
        var dataFolder = Cli.TempFolder();
        var initFolder = Cli.TempFolder();
        var saveFolder = Path.Combine(Cli.TempFolder(), "out");
        CliBadInputTests.WriteNpy(dataFolder, "x.npy", data.X, 9, 6);
        CliBadInputTests.WriteNpy(dataFolder, "y.npy", data.Y, 9, 2);
        foreach (var view in ParameterLayout.For(model).Views)
            CliBadInputTests.WriteNpy(initFolder, view.Name + ".npy", view.Of(initial.AsSpan()).ToArray(), view.Name.StartsWith('b') ? [view.Rows] : [view.Rows, view.Cols]);

        var (code, _, err) = await Cli.RunAsync("train", "--model", "6-5-2", "--activation", "tanh", "--loss", "mse", "--bias",
            "--data", $"npy:{dataFolder}", "--init", $"npy:{initFolder}", "--steps", "8", "--workers", "2", "--lr", "0.05", "--save", $"npy:{saveFolder}");

        Assert.True(code == 0, err);
        var spec = new TrainingSpec { Model = model, LearningRate = 0.05, Batch = 9, Steps = 8, Workers = 2 };
        var expected = Jobs.Local(spec, data, initial).Parameters;
        foreach (var view in ParameterLayout.For(model).Views)
        {
            using var stream = File.OpenRead(Path.Combine(saveFolder, view.Name + ".npy"));
            Assert.Equal(view.Of(expected.AsSpan()).ToArray(), Npy.Read(stream, view.Name).Data);
        }
    }
}
