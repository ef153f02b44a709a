using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Trainer.Grains;

namespace Trainer.Hosting;

/// <summary>
/// Bounds what Orleans' silo port and gateway hold for connections that have not sent their preamble
/// (<see cref="InboundAdmission"/>, docs/operations.md "Orleans' silo and gateway ports").
/// </summary>
public static class InboundConnectionLimits
{
    /// <summary>
    /// Two middlewares on each port's inbound connections. NOTE: Orleans runs a port's middlewares in the
    /// order they were added, so the admission (the cap and the deadline) is added here, ahead of TLS
    /// (<see cref="ClusterTls.UseClusterTls(ISiloBuilder, ClusterCertificate)"/> must come after, and checks
    /// it does): its deadline then also cuts a TLS handshake that never comes, and the cap counts
    /// connections still in their handshake. The watch for the preamble must read plaintext, so it is added
    /// after every other (a post-configuration), last before Orleans reads the preamble itself.
    /// </summary>
    public static ISiloBuilder LimitInboundConnections(this ISiloBuilder silo)
    {
        silo.Services.AddSingleton<Marker>();
        silo.Services.AddOptions<SiloConnectionOptions>().Configure<IOptions<TrainerOptions>, ILoggerFactory>((connections, options, loggers) =>
        {
            var logger = loggers.CreateLogger(typeof(InboundConnectionLimits).FullName!);
            var silos = new InboundAdmission("Silo port", options.Value, logger);
            var gateway = new InboundAdmission("Gateway port", options.Value, logger);
            connections.ConfigureSiloInboundConnection(builder => builder.Use(next => context => silos.AdmitAsync(next, context)));
            connections.ConfigureGatewayInboundConnection(builder => builder.Use(next => context => gateway.AdmitAsync(next, context)));
        });
        silo.Services.AddOptions<SiloConnectionOptions>().PostConfigure(connections =>
        {
            connections.ConfigureSiloInboundConnection(builder => builder.Use(PreambleWatch.Middleware));
            connections.ConfigureGatewayInboundConnection(builder => builder.Use(PreambleWatch.Middleware));
        });
        return silo;
    }

    /// <summary>Whether <see cref="LimitInboundConnections"/> was called on <paramref name="silo"/> already.</summary>
    internal static bool AreLimited(ISiloBuilder silo) => silo.Services.Any(s => s.ServiceType == typeof(Marker));

    private sealed class Marker;
}
