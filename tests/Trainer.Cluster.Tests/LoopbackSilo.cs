using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Trainer.Grains;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>
/// One silo in this process on loopback TCP, with the CLI's default cluster and service ids, for
/// tests that run the command line against a running cluster (a job outlives the command only there).
/// </summary>
internal sealed class LoopbackSilo : IAsyncDisposable
{
    private readonly IHost _host;

    private LoopbackSilo(IHost host, string gateway)
    {
        _host = host;
        Gateway = gateway;
    }

    /// <summary>host:port to pass as --gateway.</summary>
    public string Gateway { get; }

    /// <param name="configure">Changes the silo's <see cref="TrainerOptions"/> (e.g. its limits).</param>
    /// <param name="redis">host:port of a Redis server to store the jobs in (<see cref="SiloSettings.Redis"/>), not silo memory.</param>
    public static async Task<LoopbackSilo> StartAsync(CancellationToken cancellation, Action<TrainerOptions>? configure = null, string? redis = null)
    {
        int siloPort = FreePort(), gatewayPort = FreePort();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, null, "trainer", "trainer").AddTrainer(settings: redis is null ? null : new SiloSettings { Redis = redis });
            if (configure is not null) silo.Configure(configure);
        });
        var host = builder.Build();
        await host.StartAsync(cancellation);
        return new LoopbackSilo(host, $"127.0.0.1:{gatewayPort}");
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync(CancellationToken.None);
        _host.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
