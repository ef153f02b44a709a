using System.Text.RegularExpressions;

namespace Trainer.Process.Tests;

/// <summary>trainer-silo's own command line: --help, and words that are no option.</summary>
[Collection(RealProcessCollection.Name)]
public sealed class SiloCommandLineTests
{
    [Fact]
    public async Task Help_ListsEveryOptionTheSiloTakes_AndExits0_WithoutStartingASilo()
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        // The options are the switch map of trainer-silo's Program.cs: `["--name"] = "Section:Key"`.
        var source = File.ReadAllText(Path.Combine(Repo.Root, "src", "Trainer.Silo", "Program.cs"));
        string[] options = [.. Regex.Matches(source, @"\[""(--[a-z-]+)""\] =").Select(m => m.Groups[1].Value)];
        Assert.True(options.Length >= 20, $"only {options.Length} options found in Program.cs");

        var help = await processes.RunAsync("dotnet", ["trainer-silo.dll", "--help"], new Dictionary<string, string>(), TimeSpan.FromSeconds(60), Repo.SiloFolder);

        Assert.True(help.Code == 0, help.ToString());
        Assert.DoesNotContain("Silo starting", help.Out);
        Assert.All(options, option => Assert.Matches($@"(?m)^\s+{Regex.Escape(option)}\b", help.Out));
    }

    [Theory]
    [InlineData("list")]
    [InlineData("--redis", "127.0.0.1:6379", "train")]
    public async Task AWordThatIsNoOptionNorAnOptionsValue_StopsTheSilo_WithExitCode2_NamingIt(params string[] args)
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var (silo, gateway) = SiloProcess.FreePorts();

        var result = await SiloProcess.RunAsync(processes, silo, gateway, args);

        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains($"trainer-silo: error: argument '{args[^1]}' is not allowed; allowed: options as --name value or --name=value", result.Err);
        Assert.DoesNotContain("Silo starting", result.Out);
    }
}
