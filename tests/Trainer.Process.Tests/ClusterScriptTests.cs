using System.Text.RegularExpressions;

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

    [Fact]
    public async Task Start_RunsTheSilosAtNice10_AndStatusAnswersWhileTwoJobsTrainOnThem()
    {
        string[] longJob = ["--model", "1000-100-10", "--workers", "3", "--steps", "1000000"];
        await using var cluster = await LocalCluster.CreateAsync(silos: 3, "--blas-threads 1", environment: new Dictionary<string, string> { ["TRAINER_SILO_NICE"] = "" });
        await cluster.StartAsync();
        for (int silo = 0; silo < cluster.Silos; silo++)
        {
            int pid = cluster.Pid(silo);
            // Field 19 of /proc/PID/stat is the nice value; the command name before it may hold spaces.
            var nice = File.ReadAllText($"/proc/{pid}/stat").Split(')')[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[16];
            Assert.Equal((silo, "10"), (silo, nice));
            // Autogroup scheduling (where the kernel has it) weighs each session as one: the silo's must be niced too.
            if (File.Exists($"/proc/{pid}/autogroup"))
                Assert.EndsWith(" nice 10", File.ReadAllText($"/proc/{pid}/autogroup").Trim());
        }

        var jobs = new List<string>();
        try
        {
            foreach (var _ in new[] { 1, 2 })
            {
                var submitted = await cluster.TrainerAsync(["submit", .. longJob]);
                Assert.True(submitted.Code == 0, submitted.ToString());
                jobs.Add(submitted.Out.Trim());
            }
            var before = await Poll.UntilAsync(() => cluster.StatusAsync(jobs[0]), s => s.GetProperty("steps").GetInt32() > 0, TimeSpan.FromSeconds(120), s => s.ToString());

            var status = await cluster.TrainerAsync("status", jobs[0], "--verbose");

            Assert.True(status.Code == 0, status.ToString());
            var line = Regex.Match(status.Out, $@"^{jobs[0]}  running    step (\d+)/1000000  loss \S+  1000-100-10 sigmoid sse, 3 workers  checkpoint at step \d+$", RegexOptions.Multiline);
            Assert.True(line.Success, status.ToString());
            Assert.True(int.Parse(line.Groups[1].Value) >= before.GetProperty("steps").GetInt32(), status.ToString());
            // The client answered with the JIT settings it is built with (tiered: a short command's start-up is mostly compiling).
            Assert.Contains(", tiered compilation on)", status.Err);
        }
        finally
        {
            foreach (var job in jobs) await cluster.TrainerAsync("cancel", job);
        }
    }
}
