using System.Text.Json;

namespace Trainer.Process.Tests;

/// <summary>
/// The two processes that host a silo (trainer-silo, and trainer in its embedded mode) run with the
/// GC and JIT settings of src/Trainer.Runtime.props, as built by the cluster script: among them the
/// gen-0 budget cap without which an idle silo commits up to ~84 MB of gen-0 pages before collecting.
/// The one exception is the client's tiered compilation: on for its short commands, off again for an
/// embedded silo's training (EmbeddedSiloJit).
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class RuntimeSettingsTests
{
    [Fact]
    public async Task BothSiloHostingProcesses_RunWithTheRuntimeSettingsOfTheSharedProps()
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);

        foreach (var (project, assembly, tiered) in new[] { ("Trainer.Silo", "trainer-silo", "False"), ("Trainer.Client", "trainer", "True") })
        {
            var file = Path.Combine(Repo.Root, "src", project, "bin", "Release", "net10.0", $"{assembly}.runtimeconfig.json");
            using var config = JsonDocument.Parse(File.ReadAllText(file));
            var properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
            string Value(string name) => properties.TryGetProperty(name, out var value) ? value.ToString() : "(missing)";

            Assert.Equal(("8388608", "7", "False", "False", tiered),
                (Value("System.GC.Gen0MaxBudget"), Value("System.GC.ConserveMemory"), Value("System.GC.Server"), Value("System.GC.Concurrent"), Value("System.Runtime.TieredCompilation")));
        }
    }

    [Fact]
    public async Task EmbeddedTrain_RunsUnderFullJit_ThoughTheClientIsBuiltWithTieredCompilation()
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var environment = new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" };

        var train = await processes.RunAsync("dotnet", [Repo.TrainerDll, "train", "--steps", "5", "--verbose"], environment, TimeSpan.FromMinutes(3));

        // The command ran to its end in the process that replaced the first one, and said how it was compiled.
        Assert.True(train.Code == 0, train.ToString());
        Assert.Contains("completed: job ", train.Out);
        Assert.Matches(@"connected to the embedded silo .*, tiered compilation off\)", train.Err);
    }
}
