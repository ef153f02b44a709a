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

    // Values of the wrong type, read with the settings or with the silo's options as it starts, and a value of the right type out of range.
    [Theory]
    [InlineData("--clustering", "foo", "Silo:Clustering: 'foo' is not allowed; allowed: localhost, redis")]
    [InlineData("--Trainer:WorkerRetryBudget", "xyz", "Trainer:WorkerRetryBudget: 'xyz' is not allowed; allowed: a time span, hh:mm:ss")]
    [InlineData("--blas-threads", "-1", "Trainer:BlasThreads is -1; it must be 0 (the silo's cores shared among its workers) or more")]
    public async Task ASettingThatCannotBeRead_StopsTheSilo_WithExitCode2_NamingItsValueAndWhatIsAllowed(string option, string value, string message)
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var (silo, gateway) = SiloProcess.FreePorts();

        var result = await SiloProcess.RunAsync(processes, silo, gateway, [$"{option}={value}"]);

        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains($"trainer-silo: error: {message}", result.Err);
        Assert.DoesNotContain("Silo ready", result.Out);
    }

    [Fact]
    public async Task ASiloPortThatIsNoNumber_StopsTheSilo_WithExitCode2()
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);

        var result = await processes.RunAsync("dotnet", ["trainer-silo.dll", "--silo-port", "abc", "--dashboard-port", "0"], new Dictionary<string, string>(), TimeSpan.FromSeconds(60), Repo.SiloFolder);

        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains("trainer-silo: error: Silo:SiloPort: 'abc' is not allowed; allowed: a whole number", result.Err);
        Assert.DoesNotContain("Silo starting", result.Out);
    }
}
