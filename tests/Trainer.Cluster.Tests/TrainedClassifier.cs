namespace Trainer.Cluster.Tests;

/// <summary>
/// A small Fashion-MNIST classifier trained through `trainer train --save npy:DIR` (784-32-10 relu,
/// ce, Adam, 20 mini-batches of 128 from the small fixture), once per test class that uses it.
/// </summary>
public sealed class TrainedClassifier : IAsyncLifetime
{
    /// <summary>The model options it was trained with, which evaluate and predict are given again.</summary>
    public static readonly string[] Model = ["--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce"];

    public static string Data => $"idx:{Cli.SmallFashionMnist}";

    /// <summary>The folder `train --save` wrote w1.npy, b1.npy, w2.npy, b2.npy into.</summary>
    public string Weights { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        Weights = Path.Combine(Cli.TempFolder(), "weights");
        var (code, _, err) = await Cli.RunAsync(["train", "--data", Data, .. Model, "--optimizer", "adam", "--lr", "0.003", "--init", "he",
            "--batch", "128", "--steps", "20", "--workers", "2", "--save", $"npy:{Weights}"]);
        if (code != 0) throw new InvalidOperationException($"training the classifier failed ({code}): {err}");
    }

    public ValueTask DisposeAsync() => default;
}
