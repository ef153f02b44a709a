using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Trainer.Process.Tests;

/// <summary>
/// The dashboard's token, asked of every request by real silo processes (the fixture's silos run with
/// one): scripts send it as a Bearer token, browsers once as ?token=, which sets a cookie.
/// </summary>
[Collection(DashboardCollection.Name)]
public sealed partial class DashboardAccessTests(DashboardCluster fixture)
{
    private const string Refusal = "Dashboard: a request without the dashboard's token was refused: ";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task WithoutTheToken_ThePageTheApiAndOrleansDashboard_Are401_SayingHowToAuthenticate()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        foreach (var path in new[] { "", "api/jobs", $"api/jobs/{fixture.JobId}", "api/silos", "api/no-such-endpoint", "orleans/", "orleans/DashboardCounters" })
        {
            using var response = await http.GetAsync(new Uri(fixture.Cluster.Dashboard(0), path), Cancel);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"/{path} answered {response.StatusCode}");
            Assert.Equal("Bearer", Assert.Single(response.Headers.WwwAuthenticate).Scheme);
            var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Cancel)).RootElement.GetProperty("error").GetString();
            Assert.Equal("this dashboard needs its access token (no token given): send the header 'Authorization: Bearer TOKEN', "
                + "or open /?token=TOKEN once in a browser, which sets a cookie (docs/dashboard.md, Security)", error);
        }
    }

    [Fact]
    public async Task WithTheBearerToken_ThePageTheApiAndOrleansDashboardAnswer()
    {
        foreach (var (path, expected) in new[] { ("", "<title>"), ("api/silos", "\"self\":true"), ("orleans/", "<title>Orleans Dashboard</title>") })
        {
            using var response = await fixture.Http.GetAsync(new Uri(fixture.Cluster.Dashboard(1), path), Cancel);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"/{path} answered {response.StatusCode}");
            Assert.Contains(expected, await response.Content.ReadAsStringAsync(Cancel));
        }
    }

    [Theory]
    [InlineData("bearer", "the Bearer token given is not this dashboard's")]
    [InlineData("bearer-prefix", "the Bearer token given is not this dashboard's")]
    [InlineData("query", "the ?token= given is not this dashboard's")]
    [InlineData("cookie", "the browser's cookie is from another token")]
    public async Task AWrongToken_IsRefused_AndSetsNoCookie(string how, string why)
    {
        var cookies = new CookieContainer();
        using var http = new HttpClient(new HttpClientHandler { CookieContainer = cookies, AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(30) };
        var dashboard = fixture.Cluster.Dashboard(0);
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(dashboard, how == "query" ? $"api/jobs?token={DashboardCluster.Token}x" : "api/jobs"));
        if (how == "bearer") request.Headers.Authorization = new("Bearer", DashboardCluster.Token + "x");
        if (how == "bearer-prefix") request.Headers.Authorization = new("Bearer", DashboardCluster.Token[..^1]);
        if (how == "cookie") cookies.Add(dashboard, new Cookie(CookieName(0), DashboardCluster.Token));

        using var response = await http.SendAsync(request, Cancel);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains($"({why})", await response.Content.ReadAsStringAsync(Cancel));
        Assert.False(response.Headers.Contains("Set-Cookie"), string.Join("; ", response.Headers.Select(h => $"{h.Key}: {string.Join(",", h.Value)}")));
    }

    [Fact]
    public async Task OpeningAPageWithTheToken_SetsAnHttpOnlyStrictCookie_RedirectsToItWithoutTheToken_AndTheCookieOpensTheApi()
    {
        var cookies = new CookieContainer();
        using var http = new HttpClient(new HttpClientHandler { CookieContainer = cookies, AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(30) };
        var dashboard = fixture.Cluster.Dashboard(0);

        using var signIn = await http.GetAsync(new Uri(dashboard, $"orleans/?a=1&token={DashboardCluster.Token}&b=2"), Cancel);

        Assert.Equal(HttpStatusCode.SeeOther, signIn.StatusCode);
        Assert.Equal("/orleans/?a=1&b=2", signIn.Headers.Location?.OriginalString);
        var setCookie = Assert.Single(signIn.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith($"{CookieName(0)}=", setCookie);
        Assert.DoesNotContain(DashboardCluster.Token, setCookie);
        foreach (var attribute in new[] { "path=/", "samesite=strict", "httponly" }) Assert.Contains(attribute, setCookie, StringComparison.OrdinalIgnoreCase);
        // The API, by the cookie alone.
        var (status, jobs) = await DashboardCluster.GetAsync(http, dashboard, "api/jobs");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains(jobs.EnumerateArray(), j => j.GetProperty("id").GetString() == fixture.JobId);
    }

    [Fact]
    public async Task AFloodOfRefusedRequests_IsLoggedAtMostOncePerTenSeconds_WithACount_AndNeverWithTheTokenGiven()
    {
        const string Wrong = "flood-wrong-token-0123456789";
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var dashboard = fixture.Cluster.Dashboard(1);
        int before = Refusals().Count;
        var started = DateTime.UtcNow;
        int sent = 0;

        // A refused request per probe until a warning counts the ones not logged (the first such is due 10 s after the last warning).
        var logged = await Poll.UntilAsync(async () =>
        {
            for (int i = 0; i < 20; i++, sent++)
            {
                using var response = await http.GetAsync(new Uri(dashboard, $"api/jobs?token={Wrong}"), Cancel);
                Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            }
            return Refusals().Skip(before).ToArray();
        }, lines => lines.Any(l => Unlogged().IsMatch(l)), TimeSpan.FromSeconds(40), lines => string.Join('\n', lines));

        double seconds = (DateTime.UtcNow - started).TotalSeconds;
        Assert.True(logged.Length <= 2 + (int)(seconds / 10), $"{logged.Length} warnings for {sent} refused requests in {seconds:F0} s:\n{string.Join('\n', logged)}");
        Assert.Contains("GET /api/jobs from 127.0.0.1 (the ?token= given is not this dashboard's)", logged[^1]);
        Assert.DoesNotContain(Wrong, fixture.Cluster.Log(1));
        Assert.DoesNotContain(DashboardCluster.Token, fixture.Cluster.Log(1));
    }

    private string CookieName(int silo) => $"trainer-dashboard-{fixture.Cluster.BaseDashboardPort + silo}";

    private List<string> Refusals() => File.ReadLines(Path.Combine(fixture.Cluster.Folder, "silo-1.log")).Where(l => l.Contains(Refusal)).ToList();

    [GeneratedRegex(@"\((\d+) more like it since the last such warning were not logged\)")]
    private static partial Regex Unlogged();
}
