using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Trainer.Core;
using Trainer.Grains;

namespace Trainer.Hosting;

/// <summary>
/// The files of a cluster's certificate as an operator names them (`--tls-cert`, `--tls-key`,
/// `--tls-password` on trainer-silo and on the trainer CLI): a PKCS#12 file (.pfx, its password if
/// it has one), a PEM certificate with its PEM key beside it, or one PEM file holding both.
/// Loading checks what would otherwise fail later and far from the cause: a file that is missing or
/// unreadable, a wrong password, no private key, a certificate outside its dates, or one whose
/// extended key usage forbids TLS server or client authentication (every silo is both).
/// Every such failure is a <see cref="SpecException"/> naming the option and the file.
/// </summary>
/// <param name="Certificate">The certificate's file; empty: no TLS.</param>
/// <param name="Key">The PEM private key's file, when the certificate's file does not hold it.</param>
/// <param name="Password">The PKCS#12 file's password, or the encrypted PEM key's.</param>
/// <param name="Options">How the options are named in errors (trainer-silo and the CLI name them their own way).</param>
public sealed record ClusterCertificateFiles(string? Certificate, string? Key, string? Password, ClusterCertificateFiles.OptionNames Options)
{
    /// <summary>The environment variable that holds the password when no option gives it (so it is not seen in `ps`).</summary>
    public const string PasswordVariable = "TRAINER_TLS_PASSWORD";

    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1", ClientAuthentication = "1.3.6.1.5.5.7.3.2";
    private const string MakeOne = "make one with the openssl command in docs/operations.md (\"TLS and authentication\")";

    /// <summary>The names of the three options, as errors quote them.</summary>
    public sealed record OptionNames(string Certificate, string Key, string Password);

    /// <summary>The cluster's certificate, checked; null when no certificate is named (no TLS).</summary>
    public ClusterCertificate? Load()
    {
        if (string.IsNullOrWhiteSpace(Certificate))
        {
            if (!string.IsNullOrWhiteSpace(Key))
                throw new SpecException(Options.Key, Key, $"allowed only with {Options.Certificate}, the certificate whose private key it is");
            return null;
        }
        RequireFile(Options.Certificate, Certificate);
        if (!string.IsNullOrWhiteSpace(Key)) RequireFile(Options.Key, Key);
        var password = string.IsNullOrEmpty(Password) ? Environment.GetEnvironmentVariable(PasswordVariable) : Password;
        var certificate = Read(Certificate, string.IsNullOrWhiteSpace(Key) ? null : Key, string.IsNullOrEmpty(password) ? null : password);
        Check(certificate);
        return new ClusterCertificate(certificate) { File = Certificate };
    }

    private X509Certificate2 Read(string file, string? key, string? password)
    {
        bool pem = IsPem(file);
        if (pem && key is null && !File.ReadAllText(file).Contains("PRIVATE KEY-----", StringComparison.Ordinal))
            throw new SpecException(Options.Certificate, file, $"the PEM file holds no private key: give the certificate's key with {Options.Key} key.pem");
        try
        {
            if (key is not null || pem)
                return password is null ? X509Certificate2.CreateFromPemFile(file, key) : X509Certificate2.CreateFromEncryptedPemFile(file, password, key);
            return X509CertificateLoader.LoadPkcs12FromFile(file, password, X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            // The key is in the certificate's PEM file, or in --tls-key: name the file the error came from.
            var (option, culprit) = key is not null && e.Message.Contains("key", StringComparison.OrdinalIgnoreCase) ? (Options.Key, key) : (Options.Certificate, file);
            string hint = pem || key is not null
                ? $"a PEM certificate, with its PEM private key in {Options.Key} or in the same file{(password is null ? "" : $" (encrypted with {Options.Password})")}"
                : $"a PKCS#12 (.pfx) file with its private key; a wrong or missing password fails here too ({Options.Password} or {PasswordVariable})";
            throw new SpecException(option, culprit, $"it cannot be read as {hint}: {e.Message.TrimEnd('.')}");
        }
    }

    private void Check(X509Certificate2 certificate)
    {
        if (!certificate.HasPrivateKey)
            throw new SpecException(Options.Certificate, Certificate,
                $"the certificate {certificate.Subject} comes without its private key: give the key with {Options.Key} key.pem, or a .pfx that holds both");
        var now = DateTime.Now;
        if (certificate.NotAfter < now)
            throw new SpecException(Options.Certificate, Certificate, $"the certificate {certificate.Subject} expired on {certificate.NotAfter:yyyy-MM-dd HH:mm}; {MakeOne}");
        if (certificate.NotBefore > now)
            throw new SpecException(Options.Certificate, Certificate, $"the certificate {certificate.Subject} is not valid before {certificate.NotBefore:yyyy-MM-dd HH:mm} (is this machine's clock right?)");
        foreach (var usage in certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>())
        {
            var allowed = usage.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value).ToHashSet();
            if (!allowed.Contains(ServerAuthentication) || !allowed.Contains(ClientAuthentication))
                throw new SpecException(Options.Certificate, Certificate,
                    $"the certificate {certificate.Subject} limits its use (extended key usage) without allowing both TLS server and client authentication, and every silo is both; {MakeOne}");
        }
    }

    private static void RequireFile(string option, string file)
    {
        if (!File.Exists(file))
            throw new SpecException(option, file, $"the file does not exist{(Path.IsPathRooted(file) ? "" : $" (relative to {Environment.CurrentDirectory})")}");
    }

    private static bool IsPem(string file)
    {
        try
        {
            using var reader = new StreamReader(file);
            var start = new char[64];
            int read = reader.ReadBlock(start);
            return new string(start, 0, read).TrimStart().StartsWith("-----BEGIN", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;   // Read names the file and the error
        }
    }
}
