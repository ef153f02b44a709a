using System.Diagnostics;
using Trainer.Cluster.Tests;

namespace Trainer.Process.Tests;

/// <summary>
/// A client that finds the gateways through Redis (`--gateway redis://host:port`) knows no gateway of
/// its own to ask why it cannot connect: it asks the ones Redis lists, so a TLS mismatch is named at
/// once, as with a list of gateways, instead of a timeout that can only guess.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class TlsOnRedisTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    // Far below the client's 30 s connect timeout, whose message only guesses at TLS.
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task AClientViaRedis_WithoutTheCertificateOrWithAnother_IsRefusedPromptly_NamingTheGatewaysCertificate_AndWithItConnects()
    {
        var certificates = Directory.CreateTempSubdirectory("trainer-tls-redis-").FullName;
        try
        {
            var own = TestCertificates.WritePem(certificates, "trainer-cluster");
            var stranger = TestCertificates.WritePem(certificates, "stranger");
            await using var redis = await RedisServer.StartAsync();
            await using var cluster = await LocalCluster.CreateOnRedisAsync(redis, silos: 1, "--blas-threads 1",
                new Dictionary<string, string> { ["TRAINER_TLS_CERT"] = own.Certificate, ["TRAINER_TLS_KEY"] = own.Key });
            await cluster.StartAsync();
            using var processes = new ChildProcesses();
            string[] target = ["--gateway", cluster.Gateways, .. cluster.ClientArgs];

            foreach (var (certificate, message) in new (string[], string)[]
            {
                ([], "tls-cert: '(none)' is not allowed; the cluster's gateway at 127.0.0.1:{0} runs TLS (it presented the certificate CN=trainer-cluster"),
                (["--tls-cert", stranger.Certificate, "--tls-key", stranger.Key], "is not allowed; the cluster's gateway at 127.0.0.1:{0} presented the certificate CN=trainer-cluster"),
            })
            {
                var clock = Stopwatch.StartNew();
                var refused = await processes.RunAsync("dotnet", [Repo.TrainerDll, "list", .. target, .. certificate],
                    new Dictionary<string, string>(), TimeSpan.FromMinutes(2), cluster.Folder);
                clock.Stop();
                cluster.Report($"{(certificate.Length == 0 ? "no certificate" : "a stranger's")}: exit {refused.Code} after {clock.Elapsed.TotalSeconds:F1} s: {refused.Err.Trim()}");

                Assert.True(refused.Code == 2, refused.ToString());
                Assert.Contains(string.Format(message, cluster.BaseGatewayPort), refused.Err);
                Assert.DoesNotContain("no gateway answered", refused.Err);
                Assert.True(clock.Elapsed < Promptly, $"refused after {clock.Elapsed.TotalSeconds:F1} s");
            }

            var listed = await processes.RunAsync("dotnet", [Repo.TrainerDll, "list", .. target, "--tls-cert", own.Certificate, "--tls-key", own.Key],
                new Dictionary<string, string>(), TimeSpan.FromMinutes(2), cluster.Folder);
            Assert.True(listed.Code == 0, listed.ToString());
        }
        finally
        {
            Directory.Delete(certificates, recursive: true);
        }
    }
}
