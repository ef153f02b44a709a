using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Trainer.Core;
using Trainer.Dashboard;
using Trainer.Hosting;

namespace Trainer.Client;

/// <summary>
/// A connection to a Trainer cluster: either an embedded single silo started in this process
/// (no --gateway), or a client of a running cluster through one or more gateways.
/// </summary>
internal sealed class ClusterConnection : IAsyncDisposable
{
    private readonly IHost _host;

    private ClusterConnection(IHost host, string description)
    {
        _host = host;
        Description = description;
    }

    public IClusterClient Client => _host.Services.GetRequiredService<IClusterClient>();

    /// <summary>The chunk size of the large tensors this client uploads and reads, under Orleans' default message limit (which Trainer keeps).</summary>
    public static int ChunkBytes => Trainer.Abstractions.WireLimits.ChunkBytesFor(Trainer.Abstractions.WireLimits.DefaultMaxMessageBytes);

    public string Description { get; }

    /// <param name="dashboardPort">The embedded silo serves its web dashboard on this loopback port (null: none).</param>
    public static async Task<ClusterConnection> OpenAsync(string? gateways, string clusterId, string serviceId, bool verbose, CancellationToken cancellation,
        int? dashboardPort = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning);
        builder.Logging.AddFilter("Orleans", verbose ? LogLevel.Warning : LogLevel.Error);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        string description;
        if (gateways is null)
        {
            // NOTE: the embedded silo takes free ports so it never collides with a local cluster on 11111/30000.
            int siloPort = FreePort(), gatewayPort = FreePort();
            if (dashboardPort is { } port)
                builder.Configuration.AddInMemoryCollection([new(DashboardSettings.PortKey, port.ToString(CultureInfo.InvariantCulture))]);
            builder.UseOrleans(silo => silo
                .UseLocalhostClustering(siloPort, gatewayPort, null, serviceId, $"{clusterId}-embedded-{Environment.ProcessId}")
                .AddTrainer(builder.Configuration));
            description = "embedded silo (in this process)" + (dashboardPort is null or 0 ? "" : $", dashboard {DashboardSettings.From(builder.Configuration).Url}");
        }
        else
        {
            bool viaRedis = gateways.StartsWith(RedisScheme, StringComparison.OrdinalIgnoreCase);
            var endpoints = viaRedis ? [] : ParseGateways(gateways);
            builder.UseOrleansClient(client => (viaRedis
                    // A cluster on Redis membership: the live gateways are read from Redis, so no silo is special.
                    ? client.UseRedisClustering(gateways[RedisScheme.Length..])
                    : client.UseStaticClustering(endpoints))
                .Configure<ClusterOptions>(o => { o.ClusterId = clusterId; o.ServiceId = serviceId; })
                .UseConnectionRetryFilter(async (exception, token) =>
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(500), token);
                    return !token.IsCancellationRequested;
                }));
            description = $"cluster '{clusterId}' via {gateways}";
        }
        var host = builder.Build();
        using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        connectTimeout.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            await host.StartAsync(connectTimeout.Token);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            host.Dispose();
            throw new SpecException("gateway", gateways, "no gateway answered within 30 s; start the cluster first (deploy/local/cluster.sh start N) or check the ports");
        }
        catch
        {
            // E.g. the dashboard's port is in use: nothing of the embedded silo may stay behind.
            host.Dispose();
            throw;
        }
        return new ClusterConnection(host, description);
    }

    /// <summary>`--gateway redis://host:port`: find the gateways in the Redis membership table.</summary>
    public const string RedisScheme = "redis://";

    /// <summary>"host:port,host:port" to endpoints; names resolve through DNS (localhost works).</summary>
    public static IPEndPoint[] ParseGateways(string text)
    {
        const string allowed = "allowed: host:port[,host:port...], e.g. 127.0.0.1:30000,127.0.0.1:30001";
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new SpecException("gateway", text, allowed);
        return [.. parts.Select(part =>
        {
            int colon = part.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(part[(colon + 1)..], out var port) || port is < 1 or > 65535)
                throw new SpecException("gateway", part, allowed);
            var host = part[..colon];
            if (IPAddress.TryParse(host, out var address)) return new IPEndPoint(address, port);
            var resolved = Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                ?? throw new SpecException("gateway", part, "its host name does not resolve to an IPv4 address");
            return new IPEndPoint(resolved, port);
        })];
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _host.StopAsync(timeout.Token);
        }
        finally
        {
            _host.Dispose();
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
