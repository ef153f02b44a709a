namespace Trainer.Cluster.Tests;

/// <summary>`list` on a cluster that has no job yet: a word on stderr, nothing on stdout (one line per job there). Against a silo on loopback TCP.</summary>
public sealed class CliListTests : IAsyncLifetime
{
    private LoopbackSilo _silo = null!;

    public async ValueTask InitializeAsync() => _silo = await LoopbackSilo.StartAsync(TestContext.Current.CancellationToken);

    public ValueTask DisposeAsync() => _silo.DisposeAsync();

    [Fact]
    public async Task ListOfAClusterWithoutJobs_SaysSoOnStderr_AndPrintsNothingOnStdout()
    {
        var (code, output, err) = await Cli.RunAsync("list", "--gateway", _silo.Gateway);

        Assert.Equal(0, code);
        Assert.Equal("", output);
        Assert.Equal("trainer: no jobs on this cluster yet", err.Trim());
        (code, output, err) = await Cli.RunAsync("list", "--gateway", _silo.Gateway, "--json");
        Assert.Equal((0, "", ""), (code, output, err.Trim()));
    }
}
