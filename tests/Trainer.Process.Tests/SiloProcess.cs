using System.Net;
using System.Net.Sockets;

namespace Trainer.Process.Tests;

/// <summary>One trainer-silo process on free loopback ports, run to its end: for settings that must stop it at start.</summary>
public static class SiloProcess
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    /// <summary>Runs trainer-silo in its output folder (where its appsettings.json is) with <paramref name="args"/> after its ports.</summary>
    public static Task<ProcessResult> RunAsync(ChildProcesses processes, int silo, int gateway, params string[] args) =>
        processes.RunAsync("dotnet", ["trainer-silo.dll", "--silo-port", silo.ToString(), "--gateway-port", gateway.ToString(), "--primary-port", silo.ToString(), .. args],
            new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" }, Timeout, Repo.SiloFolder);

    /// <summary>Two ports free on loopback right now.</summary>
    public static (int Silo, int Gateway) FreePorts()
    {
        using var a = new TcpListener(IPAddress.Loopback, 0);
        using var b = new TcpListener(IPAddress.Loopback, 0);
        a.Start();
        b.Start();
        return (((IPEndPoint)a.LocalEndpoint).Port, ((IPEndPoint)b.LocalEndpoint).Port);
    }
}
