using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Trainer.Core;
using Trainer.Grains;

namespace Trainer.Client;

/// <summary>
/// Says why a client cannot connect when TLS is why. Orleans only sees a gateway close the
/// connection (and retries until the client gives up), whether the client lacks the cluster's
/// certificate, holds another, or speaks TLS to a cluster without it; a TLS handshake of its own
/// with one gateway tells these apart, from the certificate the gateway presents (or does not).
/// </summary>
internal static class GatewayTlsProbe
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// What is wrong between <paramref name="ours"/> (the client's certificate, or none) and the
    /// gateway at <paramref name="gateway"/>, as the error to show (null when TLS is not the
    /// problem), and whether the gateway was reached to tell (if not, ask again later).
    /// </summary>
    public static async Task<(bool Reached, SpecException? Problem)> DiagnoseAsync(IPEndPoint gateway, ClusterCertificate? ours, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(Timeout);
        using var tcp = new TcpClient(gateway.AddressFamily);
        try
        {
            await tcp.ConnectAsync(gateway, timeout.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return (false, null);   // not up yet: Orleans keeps trying
        }
        X509Certificate2? presented = null;
        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "trainer-gateway",
                ClientCertificates = ours is null ? null : [ours.Certificate],
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                {
                    presented = certificate as X509Certificate2 ?? (certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
                    return true;
                },
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            }, timeout.Token);
        }
        catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException)
        {
            // A gateway without TLS closes (or ignores) a handshake; one with TLS refuses a client without the certificate.
        }
        return (true, (presented, ours) switch
        {
            ({ } theirs, null) => new SpecException("tls-cert", null,
                $"the cluster's gateway at {gateway} runs TLS (it presented the certificate {Describe(theirs)}): give the cluster's certificate with --tls-cert (or TRAINER_TLS_CERT), the one its silos were started with"),
            ({ } theirs, { } mine) when !mine.Authenticates(theirs) => new SpecException("tls-cert", mine.File,
                $"the cluster's gateway at {gateway} presented the certificate {Describe(theirs)}, not this one ({Describe(mine.Certificate)}): give the certificate the cluster's silos were started with"),
            (null, { } mine) => new SpecException("tls-cert", mine.File,
                $"the gateway at {gateway} does not answer TLS: its cluster runs without it (leave out --tls-cert and TRAINER_TLS_CERT), or it is not a Trainer gateway"),
            _ => null,
        });
    }

    private static string Describe(X509Certificate2 certificate) => $"{certificate.Subject}, SHA-256 {certificate.GetCertHashString(HashAlgorithmName.SHA256)[..16]}...";
}
