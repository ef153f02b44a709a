using System.Text.Json;

namespace Trainer.Cluster.Tests;

/// <summary>`trainer train --precision`: bad values end with exit code 2 before any cluster is contacted; float32 trains.</summary>
public sealed class CliPrecisionTests
{
    [Fact]
    public async Task Float16_ExitsWith2_NamingPrecisionAndTheAllowedValues()
    {
        var (code, _, err) = await Cli.RunAsync("train", "--precision", "float16", "--steps", "1");

        Assert.Equal(2, code);
        Assert.Contains("precision: 'float16'", err);
        Assert.Contains("float64, float32", err);
    }

    [Fact]
    public async Task Float32WithAutograd_ExitsWith2_SayingItNeedsTheHandEngine()
    {
        var (code, _, err) = await Cli.RunAsync("train", "--precision", "float32", "--engine", "autograd", "--steps", "1");

        Assert.Equal(2, code);
        Assert.Contains("precision:", err);
        Assert.Contains("--engine hand", err);
    }

    [Fact]
    public async Task Float32Train_GivesTheSingleProcessFloat32Losses()
    {
        var (code, output, err) = await Cli.RunAsync("train", "--model", "20-8-3", "--batch", "13", "--steps", "4", "--workers", "2", "--seed", "7", "--lr", "1e-3", "--precision", "float32", "--json");

        Assert.True(code == 0, err);
        var events = Cli.JsonLines(output);
        var expected = Jobs.Local(Jobs.Small(workers: 2, steps: 4) with { Precision = Core.Training.Precision.Float32 });
        Assert.Equal(expected.Losses, events[..4].Select(e => e.GetProperty("loss").GetDouble()));
    }
}
