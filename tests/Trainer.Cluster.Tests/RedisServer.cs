using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A throw-away redis-server on a free port, on loopback unless a test needs it on every interface
/// (containers reach it at their network's gateway), started by the tests themselves (no persistence files). Where redis-server is not installed the tests that need it are skipped,
/// unless TRAINER_REQUIRE_REDIS=1 (CI installs it), where that is a failure.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly System.Diagnostics.Process _process;

    private RedisServer(System.Diagnostics.Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public string Endpoint => $"127.0.0.1:{Port}";

    /// <param name="everyInterface">Listen on 0.0.0.0 with protected mode off (for containers on a bridge network), not on loopback.</param>
    public static async Task<RedisServer> StartAsync(bool everyInterface = false)
    {
        var executable = new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server" }.FirstOrDefault(File.Exists);
        if (executable is null)
        {
            if (Environment.GetEnvironmentVariable("TRAINER_REQUIRE_REDIS") == "1")
                Assert.Fail("redis-server is not installed and TRAINER_REQUIRE_REDIS=1 (apt-get install redis-server).");
            Assert.Skip("redis-server is not installed (apt-get install redis-server); set TRAINER_REQUIRE_REDIS=1 to make this a failure.");
        }
        int port = FreePort();
        var start = new ProcessStartInfo(executable!, ["--port", port.ToString(), "--bind", everyInterface ? "0.0.0.0" : "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", everyInterface ? "no" : "yes"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = System.Diagnostics.Process.Start(start)!;
        var server = new RedisServer(process, port);
        // Ready when it accepts connections; bounded, and fails with redis's own output otherwise.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return server;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !process.HasExited)
            {
                await Task.Delay(50);
            }
            catch (SocketException)
            {
                await server.DisposeAsync();
                throw new InvalidOperationException($"redis-server did not start on port {port}: {process.StandardOutput.ReadToEnd()}");
            }
        }
    }

    /// <summary>
    /// Stops the server where it stands (SIGSTOP), as a stalled host stops it: connections stay open and
    /// commands queue unanswered until <see cref="Resume"/>, so its clients time out.
    /// </summary>
    public void Pause() => Signals.Send(_process.Id, Signals.Stop, "redis-server");

    /// <summary>Lets a paused server go on (SIGCONT); it answers what queued meanwhile.</summary>
    public void Resume() => Signals.Send(_process.Id, Signals.Continue, "redis-server");

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // SIGKILL ends a stopped process too.
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
