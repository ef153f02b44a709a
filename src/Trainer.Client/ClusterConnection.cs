using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Messaging;
using Orleans.Runtime;
using Trainer.Core;
using Trainer.Dashboard;
using Trainer.Grains;
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
    /// <param name="certificate">The cluster's certificate: connect to the gateways over TLS with it (null: plain TCP).</param>
    /// <param name="files">The embedded silo's data files (<see cref="InPlaceData"/>); null: a <see cref="StoredFiles"/> of its own.</param>
    public static async Task<ClusterConnection> OpenAsync(string? gateways, string clusterId, string serviceId, bool verbose, CancellationToken cancellation,
        int? dashboardPort = null, ClusterCertificate? certificate = null, StoredFiles? files = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        // The command answers Ctrl+C and SIGTERM (Commands.RunAsync), not the host: the console lifetime
        // would also answer them, stopping the host (an embedded silo) under the command as it cancels its job.
        builder.Services.AddSingleton<IHostLifetime, CommandLifetime>();
        SpecException? tlsProblem = null;
        // Set once the host is built: on Redis membership the gateways a TLS probe asks are the ones Orleans reads from Redis.
        IServiceProvider? services = null;
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning);
        builder.Logging.AddFilter("Orleans", verbose ? LogLevel.Warning : LogLevel.Error);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        // A failed start is reported once, as this command's error; the host's own log of it is a stack trace.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", verbose ? LogLevel.Warning : LogLevel.None);
        string description;
        if (gateways is null)
        {
            // NOTE: the embedded silo takes free ports so it never collides with a local cluster on 11111/30000.
            int siloPort = FreePort(), gatewayPort = FreePort();
            if (dashboardPort is { } port)
                builder.Configuration.AddInMemoryCollection([new(DashboardSettings.PortKey, port.ToString(CultureInfo.InvariantCulture))]);
            // Registered before the silo's own (TrainerSilo adds one only if none is).
            if (files is not null) builder.Services.AddSingleton(files);
            builder.UseOrleans(silo => silo
                .UseLocalhostClustering(siloPort, gatewayPort, null, serviceId, $"{clusterId}-embedded-{Environment.ProcessId}")
                .AddTrainer(builder.Configuration)
                .GuardInternalGrains());
            description = "embedded silo (in this process)" + (dashboardPort is null or 0 ? "" : $", dashboard {DashboardSettings.From(builder.Configuration).Url}");
        }
        else
        {
            bool viaRedis = gateways.StartsWith(RedisScheme, StringComparison.OrdinalIgnoreCase);
            var endpoints = viaRedis ? [] : ParseGateways(gateways);
            // Whether a gateway's TLS was found to agree with this client's: then TLS is not why connecting fails.
            bool agreed = false;
            int probes = 0;
            builder.UseOrleansClient(client =>
            {
                (viaRedis
                    // A cluster on Redis membership: the live gateways are read from Redis, so no silo is special.
                    ? client.UseRedisClustering(gateways[RedisScheme.Length..])
                    : client.UseStaticClustering(endpoints))
                .Configure<ClusterOptions>(o => { o.ClusterId = clusterId; o.ServiceId = serviceId; })
                .UseConnectionRetryFilter(async (exception, token) =>
                {
                    // A gateway that closes the connection may be refusing this client's TLS (or its lack of it): ask one, a few times at most.
                    var candidates = viaRedis && !agreed && tlsProblem is null && probes < MaxTlsProbes ? await MembershipGatewaysAsync(services, token) : endpoints;
                    for (int i = 0; !agreed && tlsProblem is null && probes < MaxTlsProbes && i < candidates.Length; i++, probes++)
                    {
                        var (reached, problem) = await GatewayTlsProbe.DiagnoseAsync(candidates[i], certificate, token);
                        (agreed, tlsProblem) = (reached && problem is null, problem);
                    }
                    if (tlsProblem is not null) return false;
                    await Task.Delay(TimeSpan.FromMilliseconds(500), token);
                    return !token.IsCancellationRequested;
                });
                if (certificate is not null) client.UseClusterTls(certificate);
            });
            description = $"cluster '{clusterId}' via {gateways}";
        }
        var host = builder.Build();
        services = host.Services;
        var patience = ConnectTimeout();
        using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        connectTimeout.CancelAfter(patience);
        try
        {
            await host.StartAsync(connectTimeout.Token);
        }
        catch (Exception) when (tlsProblem is not null)
        {
            host.Dispose();
            throw tlsProblem;
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            host.Dispose();
            throw new SpecException("gateway", gateways, $"no gateway answered within {patience.TotalSeconds:0.#} s ({ConnectTimeoutVariable}); start the cluster first (deploy/local/cluster.sh start N), or check the ports and that the cluster's id is '{clusterId}' (--cluster-id; a gateway of another cluster does not answer)"
                + (gateways!.StartsWith(RedisScheme, StringComparison.OrdinalIgnoreCase) ? ", and that --tls-cert is the cluster's certificate if it runs TLS" : ""));
        }
        catch
        {
            // E.g. the dashboard's port is in use: nothing of the embedded silo may stay behind.
            host.Dispose();
            throw;
        }
        return new ClusterConnection(host, description);
    }

    /// <summary>A host lifetime that leaves the process's signals to the command, which starts and stops the host itself.</summary>
    private sealed class CommandLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Seconds a client waits for a gateway to answer (default 30): longer on a machine so loaded that starting a client takes that long.</summary>
    public const string ConnectTimeoutVariable = "TRAINER_CONNECT_TIMEOUT";

    private static TimeSpan ConnectTimeout()
    {
        var text = Environment.GetEnvironmentVariable(ConnectTimeoutVariable);
        if (string.IsNullOrWhiteSpace(text)) return TimeSpan.FromSeconds(30);
        return double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double seconds) && seconds is > 0 and <= 3600
            ? TimeSpan.FromSeconds(seconds)
            : throw new SpecException(ConnectTimeoutVariable, text, "seconds a client waits for a gateway, a number above 0 and at most 3600");
    }

    /// <summary>
    /// The gateways the Redis membership table lists as live (none when it cannot be read yet): a client
    /// given redis:// knows no gateway of its own to ask why connecting fails.
    /// </summary>
    private static async Task<IPEndPoint[]> MembershipGatewaysAsync(IServiceProvider? services, CancellationToken cancel)
    {
        if (services?.GetService<IGatewayListProvider>() is not { } provider) return [];
        try
        {
            var gateways = await provider.GetGatewaysAsync(cancel);
            return [.. gateways.Select(uri => uri.ToIPEndPoint()).OfType<IPEndPoint>()];
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return [];   // Redis not reachable (yet): Orleans' own retry says so in time
        }
    }

    // Each probe is a TLS handshake the gateway may log a warning for.
    private const int MaxTlsProbes = 6;

    /// <summary>`--gateway redis://host:port`: find the gateways in the Redis membership table.</summary>
    public const string RedisScheme = "redis://";

    /// <summary>"host:port,host:port" to endpoints; names resolve through DNS (localhost works).</summary>
    /// <summary>
    /// The gateways of a --gateway list. A host name that does not resolve is left out while another gateway
    /// of the list remains (as a gateway that does not answer is); when none remains, the list is refused.
    /// </summary>
    public static IPEndPoint[] ParseGateways(string text)
    {
        const string allowed = "allowed: host:port[,host:port...], e.g. 127.0.0.1:30000,127.0.0.1:30001";
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new SpecException("gateway", text, allowed);
        var unresolved = new List<string>();
        var endpoints = parts.Select(part =>
        {
            int colon = part.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(part[(colon + 1)..], out var port) || port is < 1 or > 65535)
                throw new SpecException("gateway", part, allowed);
            var host = part[..colon];
            if (IPAddress.TryParse(host, out var address)) return new IPEndPoint(address, port);
            var resolved = Resolve(host);
            if (resolved is null) unresolved.Add(part);
            return resolved is null ? null : new IPEndPoint(resolved, port);
        }).OfType<IPEndPoint>().ToArray();
        if (endpoints.Length == 0)
            throw new SpecException("gateway", text, $"{(unresolved.Count == 1 ? "its host name does not resolve" : "none of its host names resolves")} to an IPv4 address; {allowed}");
        return endpoints;
    }

    private static IPAddress? Resolve(string host)
    {
        try
        {
            return Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork);
        }
        catch (SocketException)
        {
            return null;
        }
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
