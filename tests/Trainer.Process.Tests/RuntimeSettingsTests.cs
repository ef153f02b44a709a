using System.Text.Json;

namespace Trainer.Process.Tests;

/// <summary>
/// The two processes that host a silo (trainer-silo, and trainer in its embedded mode) run with the
/// GC and JIT settings of src/Trainer.Runtime.props, as built by the cluster script: among them the
/// gen-0 budget cap without which an idle silo commits up to ~84 MB of gen-0 pages before collecting,
/// and tiered compilation without dynamic PGO or the call-counting delay (quick start-up code, the
/// per-step path fully optimized after its 30th call), and thread-pool threads that block at once
/// when they run out of work instead of spinning on cores the arithmetic needs.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class RuntimeSettingsTests
{
    [Fact]
    public async Task BothSiloHostingProcesses_RunWithTheRuntimeSettingsOfTheSharedProps()
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);

        foreach (var (project, assembly) in new[] { ("Trainer.Silo", "trainer-silo"), ("Trainer.Client", "trainer") })
        {
            var file = Path.Combine(Repo.Root, "src", project, "bin", "Release", "net10.0", $"{assembly}.runtimeconfig.json");
            using var config = JsonDocument.Parse(File.ReadAllText(file));
            var properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
            string Value(string name) => properties.TryGetProperty(name, out var value) ? value.ToString() : "(missing)";

            Assert.Equal(("8388608", "7", "False", "False"),
                (Value("System.GC.Gen0MaxBudget"), Value("System.GC.ConserveMemory"), Value("System.GC.Server"), Value("System.GC.Concurrent")));
            Assert.Equal(("True", "False", "0"),
                (Value("System.Runtime.TieredCompilation"), Value("System.Runtime.TieredPGO"), Value("System.Runtime.TieredCompilation.CallCountingDelayMs")));
            Assert.Equal("0", Value("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit"));
        }
    }

    [Fact]
    public async Task EmbeddedTrain_SaysHowItsProcessIsCompiled()
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var environment = new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" };

        var train = await processes.RunAsync("dotnet", [Repo.TrainerDll, "train", "--steps", "5", "--verbose"], environment, TimeSpan.FromMinutes(3));

        Assert.True(train.Code == 0, train.ToString());
        Assert.Contains("completed: job ", train.Out);
        Assert.Matches(@"connected to the embedded silo .*, tiered compilation on\)", train.Err);
    }
}
