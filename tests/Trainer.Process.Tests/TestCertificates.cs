using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Trainer.Process.Tests;

/// <summary>Cluster certificates made at test time (self-signed ECDSA P-256, as docs/operations.md's openssl command makes them): no key is checked in.</summary>
public static class TestCertificates
{
    /// <summary>A certificate and its private key as PEM files <paramref name="name"/>.pem and <paramref name="name"/>.key in <paramref name="folder"/>.</summary>
    public static (string Certificate, string Key) WritePem(string folder, string name, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        using var certificate = Create(name, notBefore, notAfter);
        var (file, key) = (Path.Combine(folder, $"{name}.pem"), Path.Combine(folder, $"{name}.key"));
        File.WriteAllText(file, certificate.ExportCertificatePem());
        File.WriteAllText(key, certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        return (file, key);
    }

    /// <summary>A certificate with its private key as <paramref name="name"/>.pfx in <paramref name="folder"/>, encrypted with <paramref name="password"/>.</summary>
    public static string WritePfx(string folder, string name, string password)
    {
        using var certificate = Create(name, null, null);
        var file = Path.Combine(folder, $"{name}.pfx");
        File.WriteAllBytes(file, certificate.Export(X509ContentType.Pfx, password));
        return file;
    }

    private static X509Certificate2 Create(string name, DateTimeOffset? notBefore, DateTimeOffset? notAfter)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        return request.CreateSelfSigned(notBefore ?? DateTimeOffset.Now.AddDays(-1), notAfter ?? DateTimeOffset.Now.AddDays(2));
    }
}
