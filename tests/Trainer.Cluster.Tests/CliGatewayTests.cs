namespace Trainer.Cluster.Tests;

/// <summary>
/// Only `train` runs an embedded silo; every other command needs a running cluster, says so in its
/// help, and without a gateway stops with one line naming `gateway` and how to start a cluster.
/// </summary>
public sealed class CliGatewayTests
{
    public static TheoryData<string[]> ClusterCommands => new()
    {
        new[] { "submit", "--steps", "1" }, new[] { "watch", "job-1" }, new[] { "status", "job-1" },
        new[] { "list" }, new[] { "cancel", "job-1" }, new[] { "result", "job-1" },
    };

    [Theory]
    [MemberData(nameof(ClusterCommands))]
    public async Task AClusterCommandsHelp_SaysTheGatewayIsRequired_NotEmbedded(string[] args)
    {
        var (code, output, _) = await Cli.RunAsync(args[0], "--help");

        Assert.Equal(0, code);
        Assert.DoesNotContain("embedded", output);
        Assert.Contains("required, or TRAINER_GATEWAY; start a local cluster with deploy/local/cluster.sh start 3", output);
    }

    [Fact]
    public async Task TrainsHelp_SaysItRunsAnEmbeddedSiloWithoutAGateway()
    {
        var (_, output, _) = await Cli.RunAsync("train", "--help");

        Assert.Contains("else an embedded silo in this process", output);
    }

    [Theory]
    [MemberData(nameof(ClusterCommands))]
    public async Task AClusterCommandWithoutAGateway_ExitsWith2_SayingHowToStartACluster(string[] args)
    {
        Assert.SkipWhen(Environment.GetEnvironmentVariable("TRAINER_GATEWAY") is { Length: > 0 }, "TRAINER_GATEWAY is set");

        var (code, _, err) = await Cli.RunAsync(args);

        Assert.Equal(2, code);
        Assert.StartsWith($"trainer: error: gateway: '(none)' is not allowed; `trainer {args[0]}` talks to a running cluster", err);
        Assert.Contains("--gateway host:port or set TRAINER_GATEWAY (start a local cluster with deploy/local/cluster.sh start 3", err);
    }
}
