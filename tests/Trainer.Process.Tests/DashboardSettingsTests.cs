using System.Net;
using System.Net.Sockets;

namespace Trainer.Process.Tests;

/// <summary>
/// A dashboard setting that cannot be used stops trainer-silo with exit code 2 and one line naming
/// the setting, its value and what is allowed, before the silo joins a cluster.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class DashboardSettingsTests
{
    private static readonly TimeSpan SiloTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task ADashboardPortInUse_StopsTheSilo_WithExitCode2_BeforeItListensForClients()
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var (silo, gateway) = SiloProcess.FreePorts();

        var result = await SiloProcess.RunAsync(processes, silo, gateway, "--dashboard-port", port.ToString());

        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains($"trainer-silo: error: Trainer:DashboardPort: '{port}' is not allowed; allowed: a port free on 127.0.0.1; {port} is in use there", result.Err);
        Assert.DoesNotContain("Silo ready", result.Out);
    }

    [Theory]
    [InlineData("--dashboard-port", "70000", "Trainer:DashboardPort: '70000' is not allowed; allowed: a TCP port from 1 to 65535, or 0 for no dashboard")]
    [InlineData("--dashboard-port", "http", "Trainer:DashboardPort: 'http' is not allowed; allowed: a TCP port from 1 to 65535")]
    [InlineData("--dashboard-address", "localhost", "Trainer:DashboardAddress: 'localhost' is not allowed; allowed: an IP address of this machine")]
    public async Task AnInvalidDashboardSetting_IsRefused_WithExitCode2_NamingTheSettingItsValueAndWhatIsAllowed(string option, string value, string message)
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var (silo, gateway) = SiloProcess.FreePorts();
        string[] args = option == "--dashboard-port" ? [option, value] : ["--dashboard-port", "0", option, value];

        var result = await SiloProcess.RunAsync(processes, silo, gateway, args);

        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains($"trainer-silo: error: {message}", result.Err);
        Assert.DoesNotContain("Silo ready", result.Out);
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("::")]
    public async Task ADashboardBeyondLoopback_WithoutAToken_IsRefused_WithExitCode2_NamingTheTokensKey(string address)
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var (silo, gateway) = SiloProcess.FreePorts();
        var (dashboard, _) = SiloProcess.FreePorts();

        var result = await SiloProcess.RunAsync(processes, silo, gateway, "--dashboard-port", dashboard.ToString(), "--dashboard-address", address);

        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains($"trainer-silo: error: Trainer:DashboardToken: '(none)' is not allowed; allowed: a token, required since the dashboard listens beyond loopback (Trainer:DashboardAddress {address}): "
            + "a secret of at least 16 visible ASCII characters", result.Err);
        Assert.Contains("--dashboard-token-file FILE (Trainer:DashboardTokenFile), or as Trainer__DashboardToken; or listen on 127.0.0.1", result.Err);
        Assert.DoesNotContain("Silo ready", result.Out);
    }

    [Theory]
    [InlineData("short", null, "Trainer:DashboardToken: '(5 characters, not shown)' is not allowed; allowed: a secret of at least 16 visible ASCII characters (no spaces)")]
    [InlineData("a token with spaces in it", null, "Trainer:DashboardToken: '(25 characters, not shown)' is not allowed; allowed: a secret of at least 16")]
    [InlineData("0123456789abcdef0123", "given", "Trainer:DashboardTokenFile: '{file}' is not allowed; allowed only without Trainer:DashboardToken (--dashboard-token, Trainer__DashboardToken): give the token one way")]
    [InlineData(null, "missing", "Trainer:DashboardTokenFile: '{file}' is not allowed; allowed: a file this silo can read holding the token: Could not find file")]
    [InlineData(null, "empty", "Trainer:DashboardToken (from Trainer:DashboardTokenFile {file}): '(0 characters, not shown)' is not allowed; allowed: a secret of at least 16")]
    public async Task ABadDashboardToken_IsRefused_WithExitCode2_WithoutShowingIt(string? token, string? file, string message)
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var (silo, gateway) = SiloProcess.FreePorts();
        var folder = Directory.CreateTempSubdirectory("trainer-dashboard-token-").FullName;
        var path = Path.Combine(folder, "dashboard.token");
        if (file is "given") File.WriteAllText(path, "0123456789abcdef0123\n");
        if (file is "empty") File.WriteAllText(path, "\n");
        string[] args = ["--dashboard-port", "0", .. token is null ? [] : new[] { "--dashboard-token", token }, .. file is null ? [] : new[] { "--dashboard-token-file", path }];

        var result = await SiloProcess.RunAsync(processes, silo, gateway, args);

        Directory.Delete(folder, recursive: true);
        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains($"trainer-silo: error: {message.Replace("{file}", path)}", result.Err);
        if (token is not null) Assert.DoesNotContain(token, result.Err);
        Assert.DoesNotContain("Silo ready", result.Out);
    }

    [Fact]
    public async Task TrainWithADashboardPort_AndAGateway_IsRefused_BecauseTheClustersSilosServeTheirOwn()
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var result = await processes.RunAsync("dotnet", [Repo.TrainerDll, "train", "--dashboard-port", "8080", "--gateway", "127.0.0.1:30000"],
            new Dictionary<string, string>(), SiloTimeout);
        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains("trainer: error: dashboard-port: '8080' is not allowed; allowed only with an embedded silo (no --gateway)", result.Err);
    }

    [Fact]
    public async Task AnEmbeddedTrain_WithADashboardPort_ServesTheDashboardOfItsRunningJob()
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var (port, _) = SiloProcess.FreePorts();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var train = processes.RunAsync("dotnet", [Repo.TrainerDll, "train", "--steps", "200000", "--dashboard-port", port.ToString()],
            new Dictionary<string, string>(), TimeSpan.FromMinutes(5));

        var jobs = await Poll.UntilAsync(() => JobsAsync(http, port, train), j => j.Contains("\"state\":\"running\""), TimeSpan.FromSeconds(60), j => j);

        Assert.StartsWith("[{\"id\":\"job-", jobs);
        processes.Dispose(); // ends the client and its embedded silo, job and all
        await train;
    }

    // The job list, or why there is none yet; fails at once if the client has exited.
    private static async Task<string> JobsAsync(HttpClient http, int port, Task<ProcessResult> train)
    {
        if (train.IsCompleted) Assert.Fail($"trainer train ended before its dashboard showed the job: {await train}");
        try
        {
            return await http.GetStringAsync($"http://127.0.0.1:{port}/api/jobs");
        }
        catch (HttpRequestException e)
        {
            return e.Message;
        }
    }
}
