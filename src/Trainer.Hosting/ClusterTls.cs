using System.Security.Authentication;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Connections.Security;
using Trainer.Grains;

namespace Trainer.Hosting;

/// <summary>
/// Orleans' TLS (Microsoft.Orleans.Connections.Security) with the cluster's certificate on every
/// connection: silo to silo, client to gateway; the workers' links take it from the silo's services
/// (<see cref="LinkSecurity"/>). Both sides must present the cluster's certificate
/// (<see cref="ClusterCertificate.Authenticates"/>): a silo or client without it is refused in the handshake.
/// </summary>
public static class ClusterTls
{
    // At most one warning per port kind in this period, with the count of the rest (a flood of refused connections).
    private static readonly TimeSpan WarningPeriod = TimeSpan.FromSeconds(10);

    /// <summary>Must come after <see cref="TrainerSilo.AddTrainer"/>, so that the deadline on a connection's preamble also bounds its handshake (<see cref="InboundConnectionLimits"/>).</summary>
    public static ISiloBuilder UseClusterTls(this ISiloBuilder silo, ClusterCertificate certificate)
    {
        if (!InboundConnectionLimits.AreLimited(silo))
            throw new InvalidOperationException("UseClusterTls must come after AddTrainer: the limits on connections waiting for their preamble must run ahead of the TLS handshake.");
        silo.Services.AddSingleton(certificate);
        // NOTE: Orleans' TLS logs a warning for every refused handshake, so anyone who can reach a port
        // could fill the log; its category is kept to errors, and the refusals are logged here instead,
        // throttled. Registered before UseTls, so this middleware wraps Orleans' TLS one and sees how it ended.
        silo.Services.AddOptions<SiloConnectionOptions>().Configure<ILoggerFactory>((connections, loggers) =>
        {
            var logger = loggers.CreateLogger(typeof(ClusterTls).FullName!);
            var silos = new ThrottledWarning(logger, "Silo port: a connection failed TLS authentication and was closed", WarningPeriod);
            var gateway = new ThrottledWarning(logger, "Gateway port: a connection failed TLS authentication and was closed", WarningPeriod);
            connections.ConfigureSiloInboundConnection(builder => builder.Use(next => context => ReportRefusalAsync(next, context, silos)));
            connections.ConfigureGatewayInboundConnection(builder => builder.Use(next => context => ReportRefusalAsync(next, context, gateway)));
        });
        silo.Services.Configure<LoggerFilterOptions>(filters => filters.AddFilter(OrleansTlsCategory, LogLevel.Error));
        return silo.UseTls(certificate.Certificate, options => Require(options, certificate));
    }

    /// <summary>The logging category of Orleans' TLS middleware, whose per-connection warnings <see cref="UseClusterTls(ISiloBuilder, ClusterCertificate)"/> replaces (the client side, which says why this silo could not connect, keeps its own).</summary>
    public const string OrleansTlsCategory = "Orleans.Connections.Security.TlsServerConnectionMiddleware";

    private static async Task ReportRefusalAsync(ConnectionDelegate next, ConnectionContext context, ThrottledWarning warning)
    {
        await next(context);
        // Orleans' TLS middleware ends the connection without an exception when the handshake fails;
        // a connection that got through it has a negotiated protocol.
        // One closed for missing its preamble deadline was logged as such (InboundAdmission).
        if (context.Features.Get<ITlsHandshakeFeature>() is { Protocol: SslProtocols.None } && context.Features.Get<AwaitedPreamble>() is not { Expired: true })
            warning.Warn($"from {context.RemoteEndPoint?.ToString() ?? "an unknown address"} (no handshake with the cluster's certificate)");
    }

    public static IClientBuilder UseClusterTls(this IClientBuilder client, ClusterCertificate certificate) =>
        client.UseTls(certificate.Certificate, options => Require(options, certificate));

    private static void Require(TlsOptions options, ClusterCertificate certificate)
    {
        // Mutual: a silo asks every connecting silo and client for the certificate, and a client checks the gateway's.
        options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        // NOTE: replaces the chain and host-name checks, which a self-signed cluster certificate would fail:
        // the peer is trusted for holding the cluster's key, not for a name a CA vouched for.
        options.RemoteCertificateValidation = (remote, _, _) => certificate.Authenticates(remote);
    }
}
