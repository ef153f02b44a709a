using System.Text.Json;

namespace Trainer.Cluster.Tests;

/// <summary>`status` of a mini-batch job says which epoch its latest step is in, of how many. Against a silo on loopback TCP.</summary>
public sealed class CliEpochStatusTests : IAsyncLifetime
{
    private LoopbackSilo _silo = null!;

    public async ValueTask InitializeAsync() => _silo = await LoopbackSilo.StartAsync(TestContext.Current.CancellationToken);

    public ValueTask DisposeAsync() => _silo.DisposeAsync();

    [Fact]
    public async Task StatusOfAMiniBatchJob_NamesTheEpochOfItsLatestStep()
    {
        // The fixture's 512 images in batches of 100: five of 100 and a last of 12, six an epoch; 2 epochs.
        var (code, output, err) = await Cli.RunAsync(["train", "--data", $"idx:{Cli.SmallFashionMnist}", "--model", "784-16-10", "--activation", "relu",
            "--loss", "ce", "--optimizer", "adam", "--lr", "0.003", "--batch", "100", "--epochs", "2", "--gateway", _silo.Gateway, "--json"]);
        Assert.True(code == 0, err);
        var id = JsonDocument.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement.GetProperty("job").GetString()!;

        var (_, line, _) = await Cli.RunAsync("status", id, "--gateway", _silo.Gateway);
        Assert.Contains($"{id}  completed  step 12/12  epoch 2/2  loss ", line);
        var (_, json, _) = await Cli.RunAsync("status", id, "--gateway", _silo.Gateway, "--json");
        var status = JsonDocument.Parse(json).RootElement;
        Assert.Equal(2, status.GetProperty("epoch").GetInt32());
        Assert.Equal(2, status.GetProperty("epochs").GetInt32());
    }
}
