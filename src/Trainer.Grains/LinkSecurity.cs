using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Trainer.Grains;

/// <summary>
/// What a worker link's connection runs over: the plain socket, or, in a TLS cluster, TLS with the
/// cluster's certificate on both sides (<see cref="ClusterCertificate"/>): the link port then takes
/// only connections from holders of the cluster's key, and the blocks travel encrypted.
/// </summary>
/// <remarks>
/// TLS rather than an HMAC greeting: it authenticates every byte of the link, not only its opening,
/// and its cost on a split job's step is measured in docs/performance.md ("Worker links over TLS").
/// </remarks>
public sealed class LinkSecurity
{
    private readonly ClusterCertificate? _certificate;
    private readonly SslStreamCertificateContext? _context;

    /// <param name="certificate">The cluster's certificate; null: links run over plain TCP.</param>
    public LinkSecurity(ClusterCertificate? certificate = null)
    {
        _certificate = certificate;
        // Built once: a context per handshake would build the certificate's chain every time.
        if (certificate is not null) _context = SslStreamCertificateContext.Create(certificate.Certificate, additionalCertificates: null, offline: true);
    }

    public bool Tls => _certificate is not null;

    /// <summary>The accepting side's stream over <paramref name="socket"/> (which it then owns); throws <see cref="AuthenticationException"/> when the other side is not the cluster's.</summary>
    public Task<Stream> AcceptAsync(Socket socket, CancellationToken cancel) =>
        AuthenticateAsync(socket, (tls, certificate, context) => tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificateContext = context,
            ClientCertificateRequired = true,
            RemoteCertificateValidationCallback = (_, remote, _, _) => certificate.Authenticates(remote),
            EnabledSslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        }, cancel));

    /// <summary>The connecting side's stream over <paramref name="socket"/> (which it then owns); throws <see cref="AuthenticationException"/> when the other side is not the cluster's.</summary>
    public Task<Stream> ConnectAsync(Socket socket, CancellationToken cancel) =>
        AuthenticateAsync(socket, (tls, certificate, context) => tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            // NOTE: peers are known by their certificate, not by a host name: the name is never checked.
            TargetHost = "trainer-link",
            ClientCertificateContext = context,
            RemoteCertificateValidationCallback = (_, remote, _, _) => certificate.Authenticates(remote),
            EnabledSslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        }, cancel));

    private async Task<Stream> AuthenticateAsync(Socket socket, Func<SslStream, ClusterCertificate, SslStreamCertificateContext, Task> handshake)
    {
        var network = new NetworkStream(socket, ownsSocket: true);
        if (_certificate is null) return network;
        var tls = new SslStream(network, leaveInnerStreamOpen: false);
        try
        {
            await handshake(tls, _certificate, _context!);
            return tls;
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            await tls.DisposeAsync();
            throw new AuthenticationException($"it failed TLS authentication with the cluster's certificate: {e.Message}", e);
        }
        catch
        {
            await tls.DisposeAsync();
            throw;
        }
    }
}
