using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace Trainer.Process.Tests;

/// <summary>
/// A cluster started with a certificate (cluster.sh's TRAINER_TLS_CERT): its silos talk TLS to each
/// other, to clients and between split workers, and accept only the holders of the same certificate.
/// Silos sit at 127.0.0.1 and 127.0.0.2, so the links cross addresses.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed partial class TlsClusterTests(TlsClusterTests.Cluster tls) : IClassFixture<TlsClusterTests.Cluster>
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static readonly string[] SplitJob = ["--model", "1000-100-10", "--workers", "2", "--seed", "0", "--parallel", "split"];

    /// <summary>A 2-silo TLS cluster, its certificate and a stranger's (another self-signed one, as an attacker would make).</summary>
    public sealed class Cluster : IAsyncLifetime
    {
        /// <summary>How long a silo holds a link connection no worker claims (Trainer:SplitLinkTimeout), longer than its default.</summary>
        public static readonly TimeSpan UnclaimedExpiry = TimeSpan.FromSeconds(90);

        public string Certificates { get; } = Directory.CreateTempSubdirectory("trainer-tls-").FullName;
        public (string Certificate, string Key) Own { get; private set; }
        public (string Certificate, string Key) Stranger { get; private set; }
        public LocalCluster Silos { get; private set; } = null!;
        public ProcessResult Started { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            Own = TestCertificates.WritePem(Certificates, "trainer-cluster");
            Stranger = TestCertificates.WritePem(Certificates, "stranger");
            Silos = await LocalCluster.CreateAsync(silos: 2, $"--blas-threads 1 --Trainer:SplitLinkTimeout={UnclaimedExpiry:c}", clientArgs: ["--tls-cert", Own.Certificate, "--tls-key", Own.Key],
                addresses: ["127.0.0.1", "127.0.0.2"], environment: new Dictionary<string, string> { ["TRAINER_TLS_CERT"] = Own.Certificate, ["TRAINER_TLS_KEY"] = Own.Key });
            Started = await Silos.StartAsync();
        }

        public async ValueTask DisposeAsync()
        {
            await Silos.DisposeAsync();
            Directory.Delete(Certificates, recursive: true);
        }
    }

    [Fact]
    public async Task ASplitJobOnATlsCluster_LinksOverTls_AndEndsWithTheBitsOfOneProcess()
    {
        var cluster = tls.Silos;
        Assert.Contains($"TLS: clients need --tls-cert {tls.Own.Certificate}", tls.Started.Out);
        var split = Path.Combine(cluster.Folder, "tls-split");

        var run = await cluster.TrainerAsync(["train", .. SplitJob, "--steps", "300", "--save", $"npy:{split}", "--json"]);

        Assert.True(run.Code == 0, run.ToString());
        foreach (var silo in new[] { 0, 1 })
            Assert.Matches($@"Worker links listen on {Regex.Escape(cluster.Address(silo))}:\d+ \(TLS with the cluster's certificate\)", cluster.Log(silo));
        Assert.Matches(@"Worker 0 of job \S+ linked to workers 1 \(127\.0\.0\.2:\d+\)", cluster.Log(0));
        // The CLI's other calls pass the silos' guard on internal grains: the list, the status, the weights.
        string id = TrainJson.JobId(run.Out)!;
        Assert.Contains(id, (await cluster.TrainerAsync("list")).Out);
        Assert.Equal("completed", (await cluster.StatusAsync(id)).GetProperty("state").GetString());
        var fetched = Path.Combine(cluster.Folder, "tls-result");
        var result = await cluster.TrainerAsync("result", id, "--save", $"npy:{fetched}");
        Assert.True(result.Code == 0, result.ToString());
        // `result --save` names the model and the job the weights are from, as `train --save` does.
        var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(fetched, "model.json"))).RootElement;
        Assert.Equal((id, 300, "1000-100-10", "sigmoid", "sse", false),
            (manifest.GetProperty("job").GetString(), manifest.GetProperty("step").GetInt32(), manifest.GetProperty("model").GetString(),
             manifest.GetProperty("activation").GetString(), manifest.GetProperty("loss").GetString(), manifest.GetProperty("bias").GetBoolean()));
        var single = await SingleProcessAsync(cluster, "tls-single", 300);
        Assert.Equal(TrainJson.StepLosses(single.Out), TrainJson.StepLosses(run.Out));
        AssertSameWeights(Path.Combine(cluster.Folder, "tls-single"), split, fetched);
    }

    [Theory]
    [InlineData(false, "tls-cert: '(none)' is not allowed; the cluster's gateway at 127.0.0.1:{0} runs TLS (it presented the certificate CN=trainer-cluster")]
    [InlineData(true, "is not allowed; the cluster's gateway at 127.0.0.1:{0} presented the certificate CN=trainer-cluster")]
    public async Task AClientWithoutTheClustersCertificate_IsRefused_WithExitCode2_SayingWhy(bool strangersCertificate, string message)
    {
        var cluster = tls.Silos;
        using var processes = new ChildProcesses();
        string[] certificate = strangersCertificate ? ["--tls-cert", tls.Stranger.Certificate, "--tls-key", tls.Stranger.Key] : [];

        var result = await processes.RunAsync("dotnet", [Repo.TrainerDll, "list", "--gateway", cluster.Gateways, .. certificate],
            new Dictionary<string, string>(), TimeSpan.FromMinutes(2), cluster.Folder);

        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains(string.Format(message, cluster.BaseGatewayPort), result.Err);
        Assert.Single(result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task ASiloWithAnotherCertificate_CannotJoinTheCluster()
    {
        var cluster = tls.Silos;
        using var processes = new ChildProcesses();
        var (siloPort, gatewayPort) = SiloProcess.FreePorts();
        var output = new ConcurrentQueue<string>();
        int refusalsBefore = Refusals(cluster.Log(0));

        var intruder = processes.RunAsync("dotnet",
            ["trainer-silo.dll", "--silo-port", $"{siloPort}", "--gateway-port", $"{gatewayPort}", "--primary-port", $"{cluster.BaseSiloPort}",
             "--tls-cert", tls.Stranger.Certificate, "--tls-key", tls.Stranger.Key],
            new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" }, TimeSpan.FromMinutes(10), Repo.SiloFolder, output.Enqueue);
        // Each side refuses the other's certificate in the handshake: the intruder the primary's, the primary the intruder's.
        await Poll.UntilAsync(() => Task.FromResult((Intruder: output.Any(l => l.Contains(RejectedCertificate)), Primary: Refusals(cluster.Log(0)) > refusalsBefore)),
            seen => seen is (true, true), TimeSpan.FromMinutes(2), seen => $"{seen}; the intruder printed:\n{string.Join('\n', output)}");

        Assert.DoesNotContain(output, l => l.Contains("Silo ready"));
        processes.Dispose();
        await intruder;
        var list = await cluster.TrainerAsync("list");
        Assert.True(list.Code == 0, list.ToString());
    }

    [Fact]
    public async Task ConnectionsWithoutTheCertificateOnTheGatewayPort_AreClosedAndLoggedBriefly_AndTheClusterServes()
    {
        const int EachKind = 25;
        var cluster = tls.Silos;
        var port = new IPEndPoint(IPAddress.Loopback, cluster.BaseGatewayPort);
        int before = GatewayRefusals(cluster);
        int orleansBefore = Regex.Count(cluster.Log(0), OrleansRefusal);

        using var stranger = X509Certificate2.CreateFromPemFile(tls.Stranger.Certificate, tls.Stranger.Key);
        for (int i = 0; i < EachKind; i++)
        {
            await AssertClosedAsync(await TlsGreetingAsync(port, "job", certificate: null));
            await AssertClosedAsync(await TlsGreetingAsync(port, "job", stranger));
            await AssertClosedAsync(await PlainGreetingAsync(port, "job"));
        }

        // Logged at once for the first, then at most once per 10 s with a count of the rest.
        int warnings = await Poll.UntilAsync(() => Task.FromResult(GatewayRefusals(cluster) - before), n => n >= 1, TimeSpan.FromSeconds(30), n => $"{n} warnings");
        Assert.InRange(warnings, 1, 5);
        Assert.Equal(orleansBefore, Regex.Count(cluster.Log(0), OrleansRefusal));
        var list = await cluster.TrainerAsync("list");
        Assert.True(list.Code == 0, list.ToString());
    }

    private static int GatewayRefusals(LocalCluster cluster) => Regex.Count(cluster.Log(0), "Gateway port: a connection failed TLS authentication and was closed: from 127.0.0.1:");

    [Fact]
    public async Task ForgedLinkConnections_AreDroppedAndLoggedBriefly_WhileASplitJobEndsWithItsUndisturbedBits()
    {
        const int EachKind = 8;
        var cluster = tls.Silos;
        // Long enough that a connection the silo parked for worker 1 would stay open past AssertClosedAsync's deadline.
        int steps = await TrainJson.StepsForAsync(cluster, SplitJob, calibrationSteps: 300, seconds: 40, minSteps: 4000);
        var port = IPEndPoint.Parse(LinksListen().Match(cluster.Log(1)).Groups[1].Value);
        int warningsBefore = Unauthenticated(cluster);
        var submitted = await cluster.TrainerAsync(["submit", .. SplitJob, "--steps", $"{steps}"]);
        Assert.True(submitted.Code == 0, submitted.ToString());
        string id = submitted.Out.Trim();
        // Worker 1 has taken up its run: a greeting naming it would be parked for it, were it not refused first.
        await Poll.UntilAsync(() => Task.FromResult(cluster.Log(1)), log => log.Contains($"Worker 1 of job {id} linked to"), TimeSpan.FromMinutes(2), _ => cluster.LogLines(id));

        // Worker 1's link port, while the job runs: a plain greeting naming the job's worker, TLS without
        // a certificate, TLS with a stranger's certificate; each is closed by the silo.
        using var stranger = X509Certificate2.CreateFromPemFile(tls.Stranger.Certificate, tls.Stranger.Key);
        for (int i = 0; i < EachKind; i++)
        {
            await AssertClosedAsync(await TlsGreetingAsync(port, id, stranger));
            await AssertClosedAsync(await TlsGreetingAsync(port, id, certificate: null));
            await AssertClosedAsync(await PlainGreetingAsync(port, id));
        }
        string endedDuringForgery = cluster.LogLines($"Job {id} Completed");

        // A silo that parked them for worker 1 would have held them until the job ended.
        Assert.True(endedDuringForgery.Length == 0, $"the job ended before the forged connections were closed ({endedDuringForgery})");
        var watched = await cluster.TrainerAsync(TimeSpan.FromMinutes(5), "watch", id, "--from-start", "--json");
        Assert.True(watched.Code == 0, watched.ToString());
        Assert.Equal("completed", TrainJson.FinalEvent(watched.Out).GetProperty("event").GetString());
        int warnings = Unauthenticated(cluster) - warningsBefore;
        Assert.InRange(warnings, 1, 10);
        TestContext.Current.TestOutputHelper?.WriteLine($"{3 * EachKind} forged connections on silo 1's link port; {warnings} warning lines; the job's {steps} steps completed");
        var disturbed = Path.Combine(cluster.Folder, "forged-disturbed");
        var saved = await cluster.TrainerAsync("result", id, "--save", $"npy:{disturbed}");
        Assert.True(saved.Code == 0, saved.ToString());
        var single = await SingleProcessAsync(cluster, "forged-single", steps);
        Assert.Equal(TrainJson.StepLosses(single.Out), TrainJson.StepLosses(watched.Out));
        AssertSameWeights(Path.Combine(cluster.Folder, "forged-single"), disturbed);
    }

    [Fact]
    public async Task AConnectionThatNeverStartsItsTlsHandshake_OnTheSiloAndGatewayPorts_IsClosedAtThePreambleDeadline()
    {
        var cluster = tls.Silos;
        var address = IPAddress.Parse(cluster.Address(1));
        int refusalsBefore = Refusals(cluster.Log(1));
        foreach (var (kind, port) in new[] { ("Silo port", cluster.BaseSiloPort + 1), ("Gateway port", cluster.BaseGatewayPort + 1) })
        {
            // Nothing sent: no TLS handshake, so no preamble. Orleans' TLS gives up on a handshake after 10 s; the deadline (5 s) comes first.
            using var idle = await SiloProbe.ConnectAsync(new IPEndPoint(address, port), Token);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Token);
            deadline.CancelAfter(TimeSpan.FromSeconds(60));
            var read = await Record.ExceptionAsync(async () => Assert.Equal(0, await idle.ReceiveAsync(new byte[16], SocketFlags.None, deadline.Token)));
            Assert.True(read is null or SocketException, $"{kind}: the silo did not close an idle connection within 60 s: {read}");
            await Poll.UntilAsync(() => Task.FromResult(cluster.Log(1)), log => log.Contains($"{kind}: a connection sent no preamble within 5 s (Trainer:InboundPreambleTimeout) and was closed"),
                TimeSpan.FromSeconds(20), log => $"silo 1's warnings: {string.Join('\n', log.Split('\n').Where(l => l.Contains(kind)))}");
        }
        // Closed for its deadline, not reported as a failed authentication too.
        Assert.Equal(refusalsBefore, Refusals(cluster.Log(1)));
        // The cluster still takes its own: a client's call through the gateway.
        var listed = await cluster.TrainerAsync("list");
        Assert.True(listed.Code == 0, listed.ToString());
    }

    private const string RejectedCertificate = "The remote certificate was rejected";

    // Orleans' own per-connection warning, which the silos keep out of their logs.
    private const string OrleansRefusal = "Authentication failed";

    private static int Refusals(string log) => Regex.Count(log, "Silo port: a connection failed TLS authentication and was closed");

    private static int Unauthenticated(LocalCluster cluster) =>
        File.ReadLines(Path.Combine(cluster.Folder, "silo-1.log")).Count(l => l.Contains("Worker links: a connection failed authentication and was closed"));

    private static async Task<Stream> PlainGreetingAsync(IPEndPoint port, string job)
    {
        var socket = await SiloProbe.ConnectAsync(port, Token);
        var stream = new NetworkStream(socket, ownsSocket: true);
        await stream.WriteAsync(LinkPortFloodTests.Greeting(job, Random.Shared.NextInt64(), 0, 1), Token);
        return stream;
    }

    /// <summary>A TLS handshake with <paramref name="certificate"/> (or none), then a greeting; the stream, or null when the handshake already failed.</summary>
    private static async Task<Stream?> TlsGreetingAsync(IPEndPoint port, string job, X509Certificate2? certificate)
    {
        var socket = await SiloProbe.ConnectAsync(port, Token);
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "trainer-link",
                ClientCertificates = certificate is null ? null : [certificate],
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            }, Token);
            await tls.WriteAsync(LinkPortFloodTests.Greeting(job, Random.Shared.NextInt64(), 0, 1), Token);
            return tls;
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException)
        {
            await tls.DisposeAsync();
            return null;   // refused during the handshake
        }
    }

    /// <summary>
    /// The silo closes the connection: a read ends (nothing more comes) or fails, long before the
    /// silo would close a connection it accepted and parked for a worker (<see cref="Cluster.UnclaimedExpiry"/>).
    /// </summary>
    private static async Task AssertClosedAsync(Stream? stream)
    {
        if (stream is null) return;
        await using (stream)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Token);
            deadline.CancelAfter(Cluster.UnclaimedExpiry / 3);
            var read = await Record.ExceptionAsync(async () => Assert.Equal(0, await stream.ReadAsync(new byte[16], deadline.Token)));
            Assert.True(read is null or IOException or System.Security.Authentication.AuthenticationException,
                $"the silo did not close the connection within {(Cluster.UnclaimedExpiry / 3).TotalSeconds} s: {read}");
        }
    }

    /// <summary>The split job trained in one process (an embedded silo, no TLS), saved into <paramref name="folder"/> under the cluster's folder.</summary>
    private static async Task<ProcessResult> SingleProcessAsync(LocalCluster cluster, string folder, int steps)
    {
        var result = await cluster.EmbeddedTrainerAsync(["train", .. SplitJob, "--steps", $"{steps}", "--save", $"npy:{Path.Combine(cluster.Folder, folder)}", "--json"]);
        Assert.True(result.Code == 0, result.ToString());
        return result;
    }

    private static void AssertSameWeights(string reference, params string[] folders)
    {
        foreach (var folder in folders) Weights.AssertSameBytes(reference, folder, $"in {folder}, against the single process's,");
    }

    [GeneratedRegex(@"Worker links listen on (\S+)")]
    private static partial Regex LinksListen();
}
