using System.Net;
using System.Text.Json;

namespace Trainer.Process.Tests;

/// <summary>
/// Two real silo processes started by deploy/local/cluster.sh with their web dashboards on, behind
/// the access token <see cref="Token"/>, and a job long enough (200,000 steps) to be running through
/// every dashboard test; it is cancelled at the end.
/// </summary>
public sealed class DashboardCluster : IAsyncLifetime
{
    public const int Steps = 200_000;

    /// <summary>The silos' dashboard token (Trainer__DashboardToken in their environment: cluster.sh passes it on).</summary>
    public const string Token = "test-token-0123456789abcdef";

    private LocalCluster? _cluster;

    public LocalCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster has not started.");

    /// <summary>What `cluster.sh start` printed.</summary>
    public ProcessResult Started { get; private set; } = null!;

    public string JobId { get; private set; } = "";

    /// <summary>Sends the token with every request (`Authorization: Bearer`).</summary>
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30), DefaultRequestHeaders = { Authorization = new("Bearer", Token) } };

    public async ValueTask InitializeAsync()
    {
        try
        {
            // --blas-threads 1: two silos share 2 cores (and the browser of the page test).
            _cluster = await LocalCluster.CreateAsync(silos: 2, "--blas-threads 1", dashboards: true,
                environment: new Dictionary<string, string> { ["Trainer__DashboardToken"] = Token });
            Started = await Cluster.StartAsync();
            var submit = await Cluster.TrainerAsync("submit", "--steps", Steps.ToString());
            Assert.True(submit.Code == 0, submit.ToString());
            JobId = submit.Out.Trim();
            await Poll.UntilAsync(() => GetAsync(0, $"api/jobs/{JobId}"), r => r.Status == HttpStatusCode.OK && StepsCompleted(r.Body) > 0,
                TimeSpan.FromSeconds(60), r => $"{r.Status} {r.Body}");
        }
        catch
        {
            await DisposeAsync(); // no silo outlives a fixture that failed to start
            throw;
        }

        static int StepsCompleted(JsonElement job) => job.GetProperty("status").GetProperty("steps_completed").GetInt32();
    }

    /// <summary>The page of silo <paramref name="silo"/>'s dashboard as a person first opens it: with ?token=, which sets the browser's cookie.</summary>
    public string PageWithToken(int silo) => $"{Cluster.Dashboard(silo)}?token={Token}";

    /// <summary>GET <paramref name="path"/> from silo <paramref name="silo"/>'s dashboard with the token: the status and the JSON body.</summary>
    public Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(int silo, string path) => GetAsync(Http, Cluster.Dashboard(silo), path);

    /// <summary>GET <paramref name="path"/> under <paramref name="dashboard"/> through <paramref name="http"/>: the status and the JSON body.</summary>
    public static async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(HttpClient http, Uri dashboard, string path)
    {
        using var response = await http.GetAsync(new Uri(dashboard, path));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (_cluster is not { } cluster) return;
        _cluster = null;
        try
        {
            if (JobId != "") await cluster.TrainerAsync("cancel", JobId);
        }
        finally
        {
            await cluster.DisposeAsync();
        }
    }
}
