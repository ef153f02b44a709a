using PuppeteerSharp;

namespace Trainer.Process.Tests;

/// <summary>The dashboard's page in a real headless chromium, against real silo processes while a job runs.</summary>
[Collection(DashboardCollection.Name)]
public sealed class DashboardPageTests(DashboardCluster fixture)
{
    private const int Deadline = 30_000;
    private const string PlottedPoints = "Number(document.getElementById('loss-chart').dataset.points)";

    [Fact]
    public async Task ThePage_ListsTheRunningJob_AndItsLossCurveGrowsBetweenPolls()
    {
        await using var browser = await SystemChromium.LaunchAsync();
        await using var page = await browser.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, e) => { lock (errors) errors.Add(e.Message); };

        // Opened once with the token, the page lands on its own address, and its requests carry the cookie.
        var response = await page.GoToAsync(fixture.PageWithToken(1));
        Assert.True(response.Ok, $"GET / answered {response.Status}");
        Assert.Equal(fixture.Cluster.Dashboard(1).ToString(), response.Url);

        // The job's row says running, as a person reads it.
        var row = await page.WaitForSelectorAsync($"#jobs tbody tr[data-job-id='{fixture.JobId}'][data-state='running']", new WaitForSelectorOptions { Timeout = Deadline });
        Assert.Equal("running", await row.EvaluateFunctionAsync<string>("r => r.cells[1].textContent"));

        // With no job chosen the page shows the running one; its curve has points, then more.
        await page.WaitForFunctionAsync($"() => document.getElementById('job-id').textContent === '{fixture.JobId}' && {PlottedPoints} > 0",
            new WaitForFunctionOptions { Timeout = Deadline, PollingInterval = 100 });
        int before = await page.EvaluateExpressionAsync<int>(PlottedPoints);
        await page.WaitForFunctionAsync($"() => {PlottedPoints} > {before}", new WaitForFunctionOptions { Timeout = Deadline, PollingInterval = 100 });

        // Its workers, and both silos, active.
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#workers tbody tr').length === 2 && document.querySelectorAll(\"#silos tbody tr[data-status='active']\").length === 2",
            new WaitForFunctionOptions { Timeout = Deadline, PollingInterval = 100 });
        Assert.Equal($"127.0.0.1:{fixture.Cluster.BaseSiloPort + 1}", await page.EvaluateExpressionAsync<string>("document.getElementById('self').textContent"));
        // The job's line names the GEMM kernel its products run on, and each silo's row the kernels it runs.
        Assert.Matches(@", GEMM \S.*; data ", await page.EvaluateExpressionAsync<string>("document.getElementById('job-spec').textContent"));
        await page.WaitForFunctionAsync("() => [...document.querySelectorAll(\"#silos tbody tr[data-status='active']\")].every(r => r.cells[5].textContent.endsWith('managed'))",
            new WaitForFunctionOptions { Timeout = Deadline, PollingInterval = 100 });

        // The log scale redraws the same points.
        await page.ClickAsync("#log-scale");
        Assert.True(await page.EvaluateExpressionAsync<int>(PlottedPoints) >= before);
        await page.ScreenshotAsync(Path.Combine(fixture.Cluster.Folder, "dashboard.png"));
        Assert.Empty(errors);
    }

    [Fact]
    public async Task ALinkWithTheTokenOnAnotherSitesPage_OpensTheDashboard()
    {
        await using var browser = await SystemChromium.LaunchAsync();
        await using var page = await browser.NewPageAsync();
        // A page of no site of the dashboard's (about:blank), as a link in a chat or a wiki.
        await page.SetContentAsync($"<a id='open' href='{fixture.PageWithToken(0)}'>the dashboard</a>");

        await Task.WhenAll(page.WaitForNavigationAsync(new NavigationOptions { Timeout = Deadline }), page.ClickAsync("#open"));

        await page.WaitForFunctionAsync("() => document.getElementById('jobs') !== null || document.body.textContent.includes('needs its access token')",
            new WaitForFunctionOptions { Timeout = Deadline, PollingInterval = 100 });
        Assert.DoesNotContain("needs its access token", await page.GetContentAsync());
        await page.WaitForSelectorAsync($"#jobs tbody tr[data-job-id='{fixture.JobId}']", new WaitForSelectorOptions { Timeout = Deadline });
        Assert.DoesNotContain("token=", page.Url);
    }

    [Fact]
    public async Task AJobsValidationAndTestAccuracy_StayOnThePage_AsItPollsOnPastTheirSteps()
    {
        // 384 of the fixture's images in batches of 128 (128 held out): 9 steps, a val and a test evaluation after steps 3, 6 and 9.
        var train = await fixture.Cluster.TrainerAsync("train", "--data", $"idx:{Path.Combine(Repo.Root, "tests", "fixtures", "fashion-mnist-small")}",
            "--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce", "--batch", "128", "--epochs", "3", "--val-fraction", "0.25", "--json");
        Assert.True(train.Code == 0, train.ToString());
        var id = System.Text.Json.JsonDocument.Parse(train.Out.Trim().Split('\n')[^1]).RootElement.GetProperty("job").GetString();
        await using var browser = await SystemChromium.LaunchAsync();
        await using var page = await browser.NewPageAsync();

        await page.GoToAsync($"{fixture.PageWithToken(0)}#{id}");

        const string Evaluations = "Number(document.getElementById('accuracy-chart').dataset.points)";
        const string Polls = "Number(document.getElementById('job-id').dataset.polls || 0)";
        await page.WaitForFunctionAsync($"() => {Evaluations} === 6", new WaitForFunctionOptions { Timeout = Deadline, PollingInterval = 100 });
        int polls = await page.EvaluateExpressionAsync<int>(Polls);
        // Later answers start after the job's last step and list no evaluation: the page keeps those it read.
        await page.WaitForFunctionAsync($"() => {Polls} >= {polls + 2}", new WaitForFunctionOptions { Timeout = Deadline, PollingInterval = 100 });
        Assert.Equal(6, await page.EvaluateExpressionAsync<int>(Evaluations));
        Assert.False(await page.EvaluateExpressionAsync<bool>("document.getElementById('accuracy-chart').hidden"));
    }
}
