using System.Net;
using System.Text.Json;

namespace Trainer.Process.Tests;

/// <summary>The dashboard's JSON API, read over HTTP from real silo processes while a job runs.</summary>
[Collection(DashboardCollection.Name)]
public sealed class DashboardApiTests(DashboardCluster fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task EverySilosJobList_ShowsTheRunningJob_WithItsStepsOptimizerParallelismAndWorkers()
    {
        for (int silo = 0; silo < 2; silo++)
        {
            var (status, jobs) = await fixture.GetAsync(silo, "api/jobs");
            Assert.Equal(HttpStatusCode.OK, status);
            var job = Assert.Single(jobs.EnumerateArray(), j => j.GetProperty("id").GetString() == fixture.JobId);
            Assert.Equal(("running", DashboardCluster.Steps, "sgd", "data", 2),
                (job.GetProperty("state").GetString(), job.GetProperty("total_steps").GetInt32(), job.GetProperty("optimizer").GetString(),
                 job.GetProperty("parallelism").GetString(), job.GetProperty("workers").GetInt32()));
            Assert.True(job.GetProperty("steps_completed").GetInt32() > 0, job.ToString());
            Assert.True(double.IsFinite(job.GetProperty("last_loss").GetDouble()), job.ToString());
        }
    }

    [Fact]
    public async Task AJobsLossesFromAStep_AreTheFullHistorysFromThere_AndTheNextAnswerStartsWhereItEnded()
    {
        var (_, full) = await fixture.GetAsync(0, $"api/jobs/{fixture.JobId}");
        var all = Losses(full, out int from, out int next);
        Assert.Equal(1, from);
        Assert.Equal(next - 1, all.Length);
        Assert.True(all.Length >= 3, full.ToString());

        var (_, part) = await fixture.GetAsync(0, $"api/jobs/{fixture.JobId}?from=3");
        var tail = Losses(part, out int partFrom, out _);
        Assert.Equal(3, partFrom);
        Assert.Equal(all[2..], tail[..(all.Length - 2)]);

        // Polling on from where the last answer ended brings only steps not yet read.
        var later = await Poll.UntilAsync(() => fixture.GetAsync(0, $"api/jobs/{fixture.JobId}?from={next}"),
            r => r.Body.GetProperty("losses").GetProperty("values").GetArrayLength() > 0, Deadline, r => r.Body.ToString());
        Losses(later.Body, out int laterFrom, out int laterNext);
        Assert.Equal(next, laterFrom);
        Assert.True(laterNext > next);
    }

    [Fact]
    public async Task AJobsDetail_HasItsSpec_NoEvaluationsYet_AndEachWorkerOnALiveSilo_RankROnSiloRModTwo()
    {
        var silos = fixture.Cluster.BaseSiloPort;
        var (status, job) = await Poll.UntilAsync(() => fixture.GetAsync(1, $"api/jobs/{fixture.JobId}"),
            r => r.Body.GetProperty("workers").EnumerateArray().All(w => w.GetProperty("silo").ValueKind == JsonValueKind.String), Deadline, r => r.Body.ToString());
        Assert.Equal(HttpStatusCode.OK, status);
        var spec = job.GetProperty("spec");
        Assert.Equal((DashboardCluster.Steps, 2, "1000-100-10 sigmoid sse", "data"),
            (spec.GetProperty("steps").GetInt32(), spec.GetProperty("workers").GetInt32(), spec.GetProperty("model").GetString(), spec.GetProperty("parallelism").GetString()));
        Assert.Equal(JsonValueKind.Array, job.GetProperty("evals").ValueKind);
        Assert.Equal(0, job.GetProperty("evals").GetArrayLength());
        // RankPlacement: rank r on silo r mod S of the silos in address order.
        var workers = job.GetProperty("workers").EnumerateArray().Select(w => (w.GetProperty("rank").GetInt32(), w.GetProperty("silo").GetString())).ToArray();
        Assert.Equal([(0, $"127.0.0.1:{silos}"), (1, $"127.0.0.1:{silos + 1}")], workers);
    }

    [Fact]
    public async Task EachSilosList_ShowsBothLiveSilos_AndMarksItselfAsTheOneServing()
    {
        for (int silo = 0; silo < 2; silo++)
        {
            var (status, list) = await fixture.GetAsync(silo, "api/silos");
            Assert.Equal(HttpStatusCode.OK, status);
            var active = list.EnumerateArray().Where(s => s.GetProperty("status").GetString() == "active")
                .Select(s => (s.GetProperty("address").GetString(), s.GetProperty("gateway_port").GetInt32(), s.GetProperty("self").GetBoolean()))
                .OrderBy(s => s.Item1).ToArray();
            int b = fixture.Cluster.BaseSiloPort, g = fixture.Cluster.BaseGatewayPort;
            Assert.Equal([($"127.0.0.1:{b}", g, silo == 0), ($"127.0.0.1:{b + 1}", g + 1, silo == 1)], active);
        }
    }

    [Fact]
    public async Task TheSilosGemmKernels_AndTheJobsOwn_AreShown_AndEverySiloRunsTheJobs()
    {
        // Each silo learns the others' kernels a moment after they join.
        var (_, list) = await Poll.UntilAsync(() => fixture.GetAsync(0, "api/silos"),
            r => r.Body.EnumerateArray().Where(s => s.GetProperty("status").GetString() == "active").All(s => s.GetProperty("gemm_kernels").ValueKind == JsonValueKind.Array),
            Deadline, r => r.Body.ToString());
        var kernels = list.EnumerateArray().Where(s => s.GetProperty("status").GetString() == "active")
            .Select(s => s.GetProperty("gemm_kernels").EnumerateArray().Select(k => k.GetString()!).ToArray()).ToArray();
        Assert.Equal(2, kernels.Length);
        Assert.All(kernels, k => Assert.Equal("managed", k[^1]));
        var (_, job) = await fixture.GetAsync(1, $"api/jobs/{fixture.JobId}");
        string gemm = job.GetProperty("spec").GetProperty("gemm").GetString()!;
        // Two silos of one machine run the same kernels, so the job keeps its silo's own, the first of each list.
        Assert.All(kernels, k => Assert.Equal(gemm, k[0]));
    }

    [Fact]
    public async Task AnUnknownJob_Is404_NamingTheId()
    {
        var (status, error) = await fixture.GetAsync(0, "api/jobs/job-000000000000");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal(("id", "job-000000000000"), (error.GetProperty("field").GetString(), error.GetProperty("value").GetString()));
        Assert.Contains("no job with id 'job-000000000000'", error.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("-3")]
    [InlineData("1.5")]
    public async Task ABadFrom_Is400_NamingTheFieldTheValueAndWhatIsAllowed(string from)
    {
        var (status, error) = await fixture.GetAsync(0, $"api/jobs/{fixture.JobId}?from={from}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(("from", from), (error.GetProperty("field").GetString(), error.GetProperty("value").GetString()));
        Assert.Contains("a whole number of at least 1", error.GetProperty("allowed").GetString());
        Assert.StartsWith($"from: '{from}' is not allowed", error.GetProperty("error").GetString());
    }

    [Fact]
    public async Task OrleansOwnDashboard_IsServedUnderOrleans()
    {
        var cancel = TestContext.Current.CancellationToken;
        // NOTE: "orleans/", not "orleans", which Orleans redirects there: HttpClient drops the Authorization header on a redirect.
        using var page = await fixture.Http.GetAsync(new Uri(fixture.Cluster.Dashboard(0), "orleans/"), cancel);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<title>Orleans Dashboard</title>", await page.Content.ReadAsStringAsync(cancel));
        // Its counters are sampled once a second: both silos show once they have been.
        await Poll.UntilAsync(() => fixture.GetAsync(0, "orleans/DashboardCounters"),
            r => r.Status == HttpStatusCode.OK && r.Body.GetProperty("hosts").EnumerateArray().Count(h => h.GetProperty("status").GetString() == "Active") == 2,
            Deadline, r => $"{r.Status} {r.Body}");
    }

    [Fact]
    public void TheClusterScript_PrintsEverySilosDashboard()
    {
        int d = fixture.Cluster.BaseDashboardPort;
        Assert.Contains($"dashboards: http://127.0.0.1:{d}/,http://127.0.0.1:{d + 1}/", fixture.Started.Out);
    }

    private static double[] Losses(JsonElement job, out int from, out int next)
    {
        var losses = job.GetProperty("losses");
        from = losses.GetProperty("from").GetInt32();
        next = losses.GetProperty("next").GetInt32();
        return [.. losses.GetProperty("values").EnumerateArray().Select(v => v.GetDouble())];
    }
}
