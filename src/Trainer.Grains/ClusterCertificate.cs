using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Trainer.Grains;

/// <summary>
/// The certificate of a TLS cluster (docs/operations.md, "TLS and authentication"): every silo and
/// every client holds the same one with its private key, presents it on every connection (silo to
/// silo, client to gateway, worker link) and accepts the other side only when it presents the same
/// one. A TLS handshake proves that the side presenting a certificate holds its private key, so
/// "the same certificate" means "holds the cluster's key": no certificate authority is involved, and
/// a self-signed certificate is enough.
/// </summary>
public sealed class ClusterCertificate
{
    private readonly byte[] _hash;

    /// <param name="certificate">With its private key; its files and dates are checked where it is loaded (ClusterCertificateFiles).</param>
    public ClusterCertificate(X509Certificate2 certificate)
    {
        if (!certificate.HasPrivateKey) throw new ArgumentException($"The cluster certificate {certificate.Subject} has no private key.", nameof(certificate));
        Certificate = certificate;
        _hash = certificate.GetCertHash(HashAlgorithmName.SHA256);
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>The file it was loaded from, for messages.</summary>
    public string? File { get; init; }

    /// <summary>Whether <paramref name="remote"/>, presented by the other side of a TLS handshake, is this cluster's certificate and valid now.</summary>
    public bool Authenticates(X509Certificate? remote)
    {
        if (remote is null || !remote.GetCertHash(HashAlgorithmName.SHA256).AsSpan().SequenceEqual(_hash)) return false;
        var now = DateTime.Now;
        return Certificate.NotBefore <= now && now <= Certificate.NotAfter;
    }
}
