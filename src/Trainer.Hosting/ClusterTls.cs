using Microsoft.Extensions.DependencyInjection;
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
    public static ISiloBuilder UseClusterTls(this ISiloBuilder silo, ClusterCertificate certificate)
    {
        silo.Services.AddSingleton(certificate);
        return silo.UseTls(certificate.Certificate, options => Require(options, certificate));
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
