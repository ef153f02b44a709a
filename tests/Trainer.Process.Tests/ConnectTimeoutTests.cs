using System.Net;
using System.Net.Sockets;

namespace Trainer.Process.Tests;

/// <summary>
/// How long a cluster command waits for a gateway (TRAINER_CONNECT_TIMEOUT, default 30 s): the
/// message says the wait it gave up after, and a value that is not a wait is refused naming it.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class ConnectTimeoutTests
{
    [Fact]
    public async Task AClientWithNoGateway_GivesUpAfterTheConnectTimeout_SayingHowLongItWaited()
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);

        var result = await processes.RunAsync("dotnet", [Repo.TrainerDll, "list", "--gateway", $"127.0.0.1:{ClosedPort()}"],
            new Dictionary<string, string> { ["TRAINER_CONNECT_TIMEOUT"] = "2" }, TimeSpan.FromMinutes(2), Repo.Root);

        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains("no gateway answered within 2 s (TRAINER_CONNECT_TIMEOUT)", result.Err);
    }

    [Theory]
    [InlineData("soon")]
    [InlineData("0")]
    [InlineData("-5")]
    public async Task AConnectTimeoutThatIsNotAWait_IsRefused_NamingTheVariableAndWhatIsAllowed(string value)
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);

        var result = await processes.RunAsync("dotnet", [Repo.TrainerDll, "list", "--gateway", "127.0.0.1:30000"],
            new Dictionary<string, string> { ["TRAINER_CONNECT_TIMEOUT"] = value }, TimeSpan.FromMinutes(2), Repo.Root);

        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains($"TRAINER_CONNECT_TIMEOUT: '{value}' is not allowed; seconds a client waits for a gateway, a number above 0 and at most 3600", result.Err);
    }

    /// <summary>A port nothing listens on: bound and released at once.</summary>
    private static int ClosedPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
