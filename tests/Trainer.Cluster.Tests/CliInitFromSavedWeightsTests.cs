namespace Trainer.Cluster.Tests;

/// <summary>
/// `train --init npy:DIR` from weights `train --save` wrote: their model.json is read, and a job that
/// runs them under another activation or loss (which their shapes allow) is told so on stderr, and still runs.
/// </summary>
public sealed class CliInitFromSavedWeightsTests(TrainedClassifier classifier) : IClassFixture<TrainedClassifier>
{
    [Fact]
    public async Task SavedWeights_RunUnderAnotherActivationAndLoss_GetANoteNamingBothModels_AndTrain()
    {
        var (code, output, err) = await Cli.RunAsync("train", "--data", TrainedClassifier.Data, "--model", "784-32-10", "--bias",
            "--init", $"npy:{classifier.Weights}", "--steps", "1");

        Assert.True(code == 0, err);
        Assert.StartsWith($"trainer: note: the --init weights were trained as 784-32-10 relu ce bias ({Path.Combine(classifier.Weights, "model.json")}); "
            + "this job runs them as 784-32-10 sigmoid sse bias", err);
        Assert.Contains("completed: job", output);
    }

    [Fact]
    public async Task SavedWeights_RunAsTheyWereTrained_GetNoNote()
    {
        var (code, output, err) = await Cli.RunAsync(["train", "--data", TrainedClassifier.Data, .. TrainedClassifier.Model,
            "--init", $"npy:{classifier.Weights}", "--steps", "1"]);

        Assert.True(code == 0, err);
        Assert.DoesNotContain("note:", err);
        Assert.Contains("completed: job", output);
    }
}
