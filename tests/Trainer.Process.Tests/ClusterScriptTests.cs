namespace Trainer.Process.Tests;

/// <summary>deploy/local/cluster.sh status / start / stop against real silo processes.</summary>
[Collection(RealProcessCollection.Name)]
public sealed class ClusterScriptTests
{
    [Fact]
    public async Task Status_ShowsAKilledSiloDead_StartRefusesWhileOthersRun_StopEndsThemAll()
    {
        await using var cluster = await LocalCluster.CreateAsync(silos: 2);
        await cluster.StartAsync();
        int primary = cluster.Pid(0);

        var before = await cluster.ScriptAsync("status");
        Assert.Contains($"silo 0 (primary): pid {primary}, silo port {cluster.BaseSiloPort}, gateway 127.0.0.1:{cluster.BaseGatewayPort}, alive", before.Out);
        Assert.Contains($"silo 1: pid {cluster.Pid(1)}, silo port {cluster.BaseSiloPort + 1}, gateway 127.0.0.1:{cluster.BaseGatewayPort + 1}, alive", before.Out);

        cluster.Kill(1);
        var after = await Poll.UntilAsync(() => cluster.ScriptAsync("status"), s => s.Out.Split('\n').Any(l => l.StartsWith("silo 1:") && l.EndsWith(", dead")),
            TimeSpan.FromSeconds(10), s => s.ToString());
        Assert.Contains($"pid {primary}, silo port {cluster.BaseSiloPort}, gateway 127.0.0.1:{cluster.BaseGatewayPort}, alive", after.Out);

        var again = await cluster.ScriptAsync("start", "2");
        Assert.Equal(1, again.Code);
        Assert.Contains("still running: silo 0", again.Err);
        Assert.Equal(primary, cluster.Pid(0));

        var stop = await cluster.ScriptAsync("stop");
        Assert.True(stop.Code == 0, stop.ToString());
        Assert.Empty(Directory.GetFiles(cluster.Folder, "silo-*.pid"));
        Assert.False(File.Exists($"/proc/{primary}/cmdline") && File.ReadAllText($"/proc/{primary}/cmdline").Contains("trainer-silo"),
            $"the primary silo (pid {primary}) still runs after stop");
        var empty = await cluster.ScriptAsync("status");
        Assert.Contains("no silos in", empty.Out);
    }
}
