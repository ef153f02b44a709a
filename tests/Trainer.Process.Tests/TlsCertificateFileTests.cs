namespace Trainer.Process.Tests;

/// <summary>
/// Certificate files that cannot be used stop trainer-silo and the trainer CLI before they connect,
/// with exit code 2 and one line naming the option and the file: missing, expired, not yet valid,
/// without a private key, or a .pfx whose password is wrong.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class TlsCertificateFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("trainer-tls-files-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public static TheoryData<string, string> Cases => new()
    {
        { "missing", "the file does not exist" },
        { "expired", "the certificate CN=expired expired on" },
        { "not-yet-valid", "the certificate CN=not-yet-valid is not valid before" },
        { "no-key", "the PEM file holds no private key" },
        { "wrong-password", "it cannot be read as a PKCS#12 (.pfx) file with its private key; a wrong or missing password fails here too" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task ASiloWithACertificateItCannotUse_StopsWithExitCode2_NamingTheOptionAndTheFile(string kind, string message)
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var (silo, gateway) = SiloProcess.FreePorts();
        var (file, options) = Certificate(kind);

        var result = await SiloProcess.RunAsync(processes, silo, gateway, options);

        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains($"trainer-silo: error: Silo:TlsCertificate (--tls-cert): '{file}' is not allowed; {message}", result.Err);
        Assert.DoesNotContain("Silo ready", result.Out);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AClientWithACertificateItCannotUse_StopsWithExitCode2_NamingTheOptionAndTheFile(string kind, string message)
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var (file, options) = Certificate(kind);

        // No cluster listens there: the certificate is checked before anything connects.
        var result = await processes.RunAsync("dotnet", [Repo.TrainerDll, "list", "--gateway", "127.0.0.1:9", .. options],
            new Dictionary<string, string>(), TimeSpan.FromMinutes(2), _folder);

        Assert.True(result.Code == 2, result.ToString());
        Assert.StartsWith($"trainer: error: tls-cert: '{file}' is not allowed; {message}", result.Err);
        Assert.Single(result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>The certificate file of <paramref name="kind"/> and the options that name it.</summary>
    private (string File, string[] Options) Certificate(string kind)
    {
        var now = DateTimeOffset.Now;
        switch (kind)
        {
            case "missing":
                var missing = Path.Combine(_folder, "missing.pfx");
                return (missing, ["--tls-cert", missing]);
            case "wrong-password":
                var pfx = TestCertificates.WritePfx(_folder, "cluster", "right");
                return (pfx, ["--tls-cert", pfx, "--tls-password", "wrong"]);
            case "no-key":
                var (bare, _) = TestCertificates.WritePem(_folder, "no-key");
                return (bare, ["--tls-cert", bare]);
            default:
                var (file, key) = kind == "expired"
                    ? TestCertificates.WritePem(_folder, kind, now.AddDays(-30), now.AddDays(-1))
                    : TestCertificates.WritePem(_folder, kind, now.AddDays(10), now.AddDays(30));
                return (file, ["--tls-cert", file, "--tls-key", key]);
        }
    }
}
