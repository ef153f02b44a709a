using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace Trainer.Process.Tests;

/// <summary>
/// A silo of a TLS cluster serves its dashboard over HTTPS with the cluster's certificate; this one
/// listens beyond loopback (0.0.0.0), which it may only with a token, here read from a file.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class DashboardTlsTests
{
    private const string Token = "tls-dashboard-token-0123456789";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ATlsSilosDashboard_IsServedOverHttpsWithTheClustersCertificate_BehindTheTokenOfItsTokenFile()
    {
        var folder = Directory.CreateTempSubdirectory("trainer-dashboard-tls-").FullName;
        try
        {
            var (certificate, key) = TestCertificates.WritePem(folder, "trainer-cluster");
            var tokenFile = Path.Combine(folder, "dashboard.token");
            File.WriteAllText(tokenFile, Token + "\n");
            await using var cluster = await LocalCluster.CreateAsync(silos: 1, $"--blas-threads 1 --dashboard-address 0.0.0.0 --dashboard-token-file {tokenFile}", dashboards: true,
                environment: new Dictionary<string, string> { ["TRAINER_TLS_CERT"] = certificate, ["TRAINER_TLS_KEY"] = key });
            var started = await cluster.StartAsync();
            int port = cluster.BaseDashboardPort;

            // What the silo and the script say: the address it listens on, and the one to open here.
            Assert.Contains($"dashboards: https://127.0.0.1:{port}/", started.Out);
            Assert.Contains($"Silo ready: gateway 127.0.0.1:{cluster.BaseGatewayPort}, dashboard https://0.0.0.0:{port}/", cluster.Log(0));

            using var expected = X509CertificateLoader.LoadCertificateFromFile(certificate);
            string? presented = null;
            using var http = new HttpClient(new HttpClientHandler
            {
                AllowAutoRedirect = false,
                // The client trusts the cluster's certificate itself (it is self-signed), as an operator pins it.
                ServerCertificateCustomValidationCallback = (_, server, _, _) => (presented = server?.Thumbprint) == expected.Thumbprint,
            }) { Timeout = TimeSpan.FromSeconds(30) };
            var silos = new Uri(cluster.Dashboard(0), "api/silos");

            using var refused = await http.GetAsync(silos, Cancel);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            using var request = new HttpRequestMessage(HttpMethod.Get, silos) { Headers = { Authorization = new("Bearer", Token) } };
            using var answered = await http.SendAsync(request, Cancel);
            Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
            Assert.Contains("\"self\":true", await answered.Content.ReadAsStringAsync(Cancel));
            Assert.Equal(expected.Thumbprint, presented);
            // Over HTTPS the browser's cookie is sent over HTTPS only.
            using var signIn = await http.GetAsync(new Uri(cluster.Dashboard(0), $"?token={Token}"), Cancel);
            Assert.Equal(HttpStatusCode.SeeOther, signIn.StatusCode);
            Assert.Contains("; secure", Assert.Single(signIn.Headers.GetValues("Set-Cookie")), StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
