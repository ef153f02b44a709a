using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Trainer.Cluster.Tests;

namespace Trainer.Process.Tests;

/// <summary>
/// A private local cluster started through deploy/local/cluster.sh: its own folder under /tmp and
/// free port ranges, so it never meets a developer's cluster on 11111/30000. Disposing stops the
/// silos through the script, then kills whatever survived (also when the test failed).
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(90);
    private readonly ChildProcesses _processes = new();
    private readonly Dictionary<string, string> _environment;

    private readonly string? _gateway;
    private readonly string[] _clientArgs;
    private readonly string[] _addresses;

    private LocalCluster(int silos, int baseSiloPort, int baseGatewayPort, int baseDashboardPort, string siloArgs, string? gateway, string[] clientArgs, string[] addresses,
        IDictionary<string, string>? environment)
    {
        _gateway = gateway;
        _clientArgs = clientArgs;
        _addresses = addresses;
        Silos = silos;
        BaseSiloPort = baseSiloPort;
        BaseGatewayPort = baseGatewayPort;
        BaseDashboardPort = baseDashboardPort;
        Folder = Path.Combine(Path.GetTempPath(), "trainer-process-tests", Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Folder);
        _environment = new()
        {
            ["TRAINER_CLUSTER_DIR"] = Folder,
            ["TRAINER_BASE_SILO_PORT"] = baseSiloPort.ToString(),
            ["TRAINER_BASE_GATEWAY_PORT"] = baseGatewayPort.ToString(),
            ["TRAINER_BASE_DASHBOARD_PORT"] = baseDashboardPort.ToString(),
            ["TRAINER_SILO_ARGS"] = siloArgs,
            ["TRAINER_SILO_ADDRESSES"] = string.Join(',', addresses),
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            // A client started beside busy silos and other tests on 2 cores can take longer than the default 30 s to connect.
            ["TRAINER_CONNECT_TIMEOUT"] = "120",
            // Silos at the tests' own priority, so that a test's deadlines do not depend on what else the
            // machine runs; "" in `environment` gives cluster.sh's default (nice 10).
            ["TRAINER_SILO_NICE"] = "0",
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) _environment[key] = value;
    }

    public int Silos { get; }
    public int BaseSiloPort { get; }
    public int BaseGatewayPort { get; }

    /// <summary>What every `trainer` command of this cluster gets after its --gateway (e.g. a Redis cluster's --cluster-id).</summary>
    public IReadOnlyList<string> ClientArgs => _clientArgs;

    /// <summary>Silo i serves its web dashboard on this + i; 0: the silos serve none.</summary>
    public int BaseDashboardPort { get; }

    /// <summary>The web dashboard of silo <paramref name="silo"/>, e.g. http://127.0.0.1:41234/ (https:// on a TLS cluster, which serves it with the cluster's certificate).</summary>
    public Uri Dashboard(int silo) => BaseDashboardPort == 0
        ? throw new InvalidOperationException("This cluster was created without dashboards (LocalCluster.CreateAsync(..., dashboards: true)).")
        : new Uri($"{(_environment.ContainsKey("TRAINER_TLS_CERT") ? "https" : "http")}://127.0.0.1:{BaseDashboardPort + silo}/");

    /// <summary>Logs, pid files and anything the test writes (kept after the test, for reading).</summary>
    public string Folder { get; }

    /// <summary>A line for the test's output that is also kept in report.log beside the silos' logs (an xunit run shows a passing test's output only on request).</summary>
    public void Report(string line)
    {
        TestContext.Current.TestOutputHelper?.WriteLine(line);
        File.AppendAllLines(Path.Combine(Folder, "report.log"), [line]);
    }

    /// <summary>Silo <paramref name="silo"/>'s IP address (cluster.sh's TRAINER_SILO_ADDRESSES: entry i, or the last).</summary>
    public string Address(int silo) => _addresses[Math.Min(silo, _addresses.Length - 1)];

    /// <summary>Every silo's gateway, as the client's --gateway option wants them.</summary>
    public string Gateways => _gateway ?? string.Join(',', Enumerable.Range(0, Silos).Select(i => $"{Address(i)}:{BaseGatewayPort + i}"));

    /// <summary>A cluster that has not been started yet (see <see cref="StartAsync"/>).</summary>
    /// <param name="gateway">What the client's --gateway gets instead of the list of every gateway (e.g. redis://host:port).</param>
    /// <param name="clientArgs">Appended to every `trainer` command (e.g. --cluster-id).</param>
    /// <param name="dashboards">Whether the silos serve their web dashboards (on free ports, see <see cref="Dashboard"/>).</param>
    /// <param name="addresses">Silo i's IP address is entry i (the last for silos beyond the list); default 127.0.0.1 for all.</param>
    /// <param name="environment">More variables for cluster.sh and the clients (e.g. TRAINER_TLS_CERT).</param>
    public static async Task<LocalCluster> CreateAsync(int silos, string siloArgs = "", string? gateway = null, string[]? clientArgs = null, bool dashboards = false,
        string[]? addresses = null, IDictionary<string, string>? environment = null)
    {
        var (siloBase, gatewayBase, dashboardBase) = FreePortBases(silos);
        var cluster = new LocalCluster(silos, siloBase, gatewayBase, dashboards ? dashboardBase : 0, siloArgs, gateway, clientArgs ?? [], addresses ?? ["127.0.0.1"], environment);
        await Repo.EnsureBuiltAsync(cluster._processes);
        return cluster;
    }

    /// <summary>
    /// A cluster on Redis membership and job storage (<paramref name="redis"/>), under a cluster id of its
    /// own: no silo is special, and the client finds the gateways in Redis.
    /// </summary>
    public static Task<LocalCluster> CreateOnRedisAsync(Trainer.Cluster.Tests.RedisServer redis, int silos, string siloArgs = "", IDictionary<string, string>? environment = null)
    {
        var clusterId = "test-" + Guid.NewGuid().ToString("N")[..8];
        return CreateAsync(silos, $"{siloArgs} --clustering redis --redis {redis.Endpoint} --cluster-id {clusterId}",
            gateway: $"redis://{redis.Endpoint}", clientArgs: ["--cluster-id", clusterId], environment: environment);
    }

    public Task<ProcessResult> ScriptAsync(params string[] args) =>
        _processes.RunAsync("bash", [Repo.ClusterScript, .. args], _environment, TimeSpan.FromMinutes(3), Repo.Root);

    /// <summary>`cluster.sh start N`, which must succeed; its output (the gateways, the dashboards).</summary>
    public async Task<ProcessResult> StartAsync()
    {
        var result = await ScriptAsync("start", Silos.ToString());
        Assert.True(result.Code == 0, result.ToString());
        return result;
    }

    /// <summary>
    /// `cluster.sh restart I...`: starts the listed (dead) silos again with the cluster's settings, and
    /// returns once they are ready; their previous logs are kept as silo-i.log.1, .2, ...
    /// </summary>
    public Task<ProcessResult> RestartAsync(params int[] silos) => RestartAsync(new Dictionary<string, string>(), silos);

    /// <summary>`cluster.sh restart I...` with <paramref name="environment"/> over the cluster's (e.g. another TRAINER_BLAS for the restarted silos).</summary>
    public async Task<ProcessResult> RestartAsync(IDictionary<string, string> environment, params int[] silos)
    {
        var merged = new Dictionary<string, string>(_environment);
        foreach (var (key, value) in environment) merged[key] = value;
        var result = await _processes.RunAsync("bash", [Repo.ClusterScript, "restart", .. silos.Select(i => i.ToString())], merged, TimeSpan.FromMinutes(3), Repo.Root);
        Assert.True(result.Code == 0, result.ToString());
        return result;
    }

    /// <summary>Runs the real `trainer` client with --gateway set to every silo's gateway.</summary>
    public Task<ProcessResult> TrainerAsync(params string[] args) => TrainerAsync(ClientTimeout, args);

    public Task<ProcessResult> TrainerAsync(TimeSpan timeout, params string[] args) => TrainerAsync(timeout, null, args);

    /// <summary>As <see cref="TrainerAsync(string[])"/>, calling <paramref name="onLine"/> with each stdout line as it is printed.</summary>
    public Task<ProcessResult> TrainerAsync(TimeSpan timeout, Action<string>? onLine, params string[] args) =>
        _processes.RunAsync("dotnet", [Repo.TrainerDll, .. args, "--gateway", Gateways, .. _clientArgs], _environment, timeout, Folder, onLine);

    /// <summary>
    /// As <see cref="TrainerAsync(TimeSpan, Action{string}, string[])"/>, telling <paramref name="onStart"/> the client's process id;
    /// <paramref name="embedded"/>: without --gateway, on the command's own embedded silo.
    /// </summary>
    /// <remarks>
    /// NOTE: through `env --default-signal=INT`, which execs the client in its place: a shell without job
    /// control (CI's) starts background commands with SIGINT ignored, the test runner and its children
    /// inherit that, and an ignored SIGINT stays ignored, as a user's Ctrl+C never is.
    /// </remarks>
    public Task<ProcessResult> SignalableTrainerAsync(TimeSpan timeout, bool embedded, Action<int> onStart, Action<string> onLine, params string[] args) =>
        _processes.RunAsync("env", ["--default-signal=INT", "dotnet", Repo.TrainerDll, .. args, .. embedded ? Array.Empty<string>() : ["--gateway", Gateways, .. _clientArgs]],
            _environment, timeout, Folder, onLine, onStart);

    /// <summary>
    /// Runs `trainer` on its own embedded silo (no gateway), in the cluster's folder: one process whose
    /// losses and weights every data-parallel or split run of the same job on the cluster must have
    /// (docs/architecture.md, "Invariants"). A test's undisturbed reference, run beside the disturbed job
    /// rather than before it, since its bits do not depend on where or when it runs.
    /// </summary>
    public Task<ProcessResult> EmbeddedTrainerAsync(params string[] args) => EmbeddedTrainerAsync(TimeSpan.FromMinutes(5), args);

    public Task<ProcessResult> EmbeddedTrainerAsync(TimeSpan timeout, params string[] args) => EmbeddedTrainerAsync(timeout, new Dictionary<string, string>(), args);

    /// <param name="environment">The process's variables beyond the test's own (not the cluster's), e.g. TRAINER_BLAS.</param>
    public Task<ProcessResult> EmbeddedTrainerAsync(TimeSpan timeout, IDictionary<string, string> environment, params string[] args) =>
        _processes.RunAsync("dotnet", [Repo.TrainerDll, .. args], environment, timeout, Folder);

    public async Task<JsonElement> StatusAsync(string jobId)
    {
        var result = await TrainerAsync("status", jobId, "--json");
        Assert.True(result.Code == 0, result.ToString());
        return JsonDocument.Parse(result.Out).RootElement;
    }

    /// <summary>`trainer list --json`: every job the cluster knows, by id (each a status: state, steps, ...).</summary>
    public async Task<Dictionary<string, JsonElement>> ListAsync()
    {
        var result = await TrainerAsync("list", "--json");
        Assert.True(result.Code == 0, result.ToString());
        return result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement)
            .ToDictionary(e => e.GetProperty("job").GetString()!);
    }

    public int Pid(int silo) => int.Parse(File.ReadAllText(PidFile(silo)).Trim());

    public string PidFile(int silo) => Path.Combine(Folder, $"silo-{silo}.pid");

    public string Log(int silo) => File.ReadAllText(Path.Combine(Folder, $"silo-{silo}.log"));

    /// <summary>The lines of every silo's log that mention <paramref name="text"/>, for failure messages.</summary>
    public string LogLines(string text) => string.Join('\n', Enumerable.Range(0, Silos).SelectMany(i =>
        File.ReadLines(Path.Combine(Folder, $"silo-{i}.log")).Where(l => l.Contains(text)).Select(l => $"silo-{i}: {l.Trim()}")));

    /// <summary>As <see cref="LogLines"/>, also from the logs of the silos' earlier lives (before a restart).</summary>
    public string AllLogLines(string text) => string.Join('\n', Enumerable.Range(0, Silos).SelectMany(i =>
        Directory.GetFiles(Folder, $"silo-{i}.log*").Order(StringComparer.Ordinal).SelectMany(file =>
            File.ReadLines(file).Where(l => l.Contains(text)).Select(l => $"{Path.GetFileName(file)}: {l.Trim()}"))));

    /// <summary>Which silos' logs contain <paramref name="text"/>, e.g. "silo 2".</summary>
    public string SiloLogging(string text)
    {
        var silos = Enumerable.Range(0, Silos).Where(i => Log(i).Contains(text)).Select(i => $"silo {i}").ToArray();
        return silos.Length == 0 ? "no silo" : string.Join(", ", silos);
    }

    /// <summary>SIGTERM, as a supervisor stopping the silo sends (cluster.sh stop, a Kubernetes rolling update): it leaves the cluster politely. Returns at once.</summary>
    public void Terminate(int silo) => Signals.Send(Pid(silo), Signals.Term, $"silo {silo}");

    /// <summary>SIGKILL: the silo gets no chance to leave the cluster politely.</summary>
    public void Kill(int silo) => System.Diagnostics.Process.GetProcessById(Pid(silo)).Kill();

    /// <summary>SIGKILL of silo <paramref name="silo"/>, returning once its process has gone (its ports are free to take again).</summary>
    public async Task KillAsync(int silo)
    {
        using var process = System.Diagnostics.Process.GetProcessById(Pid(silo));
        process.Kill();
        await process.WaitForExitAsync();
    }

    /// <summary>SIGKILL of every silo at once, returning once they have all gone.</summary>
    public async Task KillAllAsync()
    {
        var processes = Enumerable.Range(0, Silos).Select(i => System.Diagnostics.Process.GetProcessById(Pid(i))).ToArray();
        foreach (var process in processes) process.Kill();
        foreach (var process in processes)
        {
            await process.WaitForExitAsync();
            process.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ScriptAsync("stop");
        }
        finally
        {
            // Whatever the script could not stop (or never got to) is killed here.
            foreach (var file in Directory.GetFiles(Folder, "silo-*.pid"))
            {
                if (!int.TryParse(File.ReadAllText(file).Trim(), out var pid)) continue;
                try
                {
                    using var process = System.Diagnostics.Process.GetProcessById(pid);
                    if (File.ReadAllText($"/proc/{pid}/cmdline").Contains("trainer-silo")) process.Kill(entireProcessTree: true);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException) { }
            }
            _processes.Dispose();
        }
    }

    /// <summary>
    /// Random silo, gateway and dashboard port bases in 21000-28999 / 31000-38999 / 41000-48999 whose
    /// next <paramref name="count"/> ports are all free on loopback right now.
    /// </summary>
    private static (int Silo, int Gateway, int Dashboard) FreePortBases(int count)
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            int silo = Random.Shared.Next(21000, 29000 - count);
            int gateway = silo + 10000, dashboard = silo + 20000;
            if (Enumerable.Range(0, count).All(i => IsFree(silo + i) && IsFree(gateway + i) && IsFree(dashboard + i))) return (silo, gateway, dashboard);
        }
        throw new InvalidOperationException("No free port range found in 21000-48999 after 50 tries.");
    }

    public static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
