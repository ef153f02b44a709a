using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using Trainer.Grains;

namespace Trainer.Dashboard;

/// <summary>
/// Lets a request through to any path of the dashboard's app (the page, the API, Orleans' dashboard)
/// only when it carries the dashboard's token: `Authorization: Bearer TOKEN` (scripts), or the cookie
/// a browser gets by opening any page with ?token=TOKEN once. That request is answered with the cookie
/// (HttpOnly: the page's scripts cannot read it; SameSite=Strict: other sites' pages cannot send it)
/// and a redirect to the same address without the token, which so leaves the address bar and history
/// (for a navigation another site started, a page that redirects itself: see <see cref="SignInAsync"/>).
/// Anything else is refused with 401 and a line saying how to authenticate; refusals are logged at
/// most once per <see cref="LinkListener.WarningPeriod"/>, with a count, so a flood costs no disk.
/// </summary>
internal sealed class DashboardAccess(DashboardToken token, int port, bool https, ILogger logger)
{
    public const string QueryName = "token";

    // One cookie per port: browsers share cookies between the ports of a host, and each silo's dashboard has its own.
    private readonly string _cookie = $"trainer-dashboard-{port}";
    private readonly ThrottledWarning _refused = new(logger, "Dashboard: a request without the dashboard's token was refused", LinkListener.WarningPeriod);

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (request.Query.TryGetValue(QueryName, out var query))
            return token.Matches(query.Count == 1 ? query[0] : null) ? SignInAsync(context) : RefuseAsync(context, "the ?token= given is not this dashboard's");
        if (Bearer(request) is { } bearer)
            return token.Matches(bearer) ? next(context) : RefuseAsync(context, "the Bearer token given is not this dashboard's");
        if (request.Cookies.TryGetValue(_cookie, out var cookie))
            return token.MatchesCookie(cookie) ? next(context) : RefuseAsync(context, "the browser's cookie is from another token");
        return RefuseAsync(context, "no token given");
    }

    private Task SignInAsync(HttpContext context)
    {
        var (request, response) = (context.Request, context.Response);
        response.Cookies.Append(_cookie, token.CookieValue, new CookieOptions
        {
            HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = https, Path = "/",
        });
        response.Headers.CacheControl = "no-store";
        var target = $"{request.PathBase}{request.Path}{QueryString.Create(request.Query.Where(q => q.Key != QueryName))}" is { Length: > 0 } t ? t : "/";
        // NOTE: SameSite=Strict withholds the cookie from every request of a navigation another site
        // started (a link in a chat), its redirects included: a 303 would land on a 401. A navigation
        // this answer starts itself is the dashboard's own, and carries the cookie.
        if (request.Headers["Sec-Fetch-Site"] == "cross-site")
        {
            response.ContentType = "text/html; charset=utf-8";
            return response.WriteAsync(
                $"<!doctype html><meta charset=\"utf-8\"><title>Trainer dashboard</title><script>location.replace(\"{JavaScriptEncoder.Default.Encode(target)}\")</script>"
                + $"<a href=\"{HtmlEncoder.Default.Encode(target)}\">Open the dashboard</a>");
        }
        response.StatusCode = StatusCodes.Status303SeeOther;
        response.Headers.Location = target;
        return Task.CompletedTask;
    }

    private Task RefuseAsync(HttpContext context, string why)
    {
        var request = context.Request;
        // The path as sent (escaped, so no line breaks reach the log), never its query: it may hold a token.
        var path = request.Path.ToUriComponent();
        _refused.Warn($"{request.Method} {(path.Length > 200 ? path[..200] + "..." : path)} from {context.Connection.RemoteIpAddress?.ToString() ?? "an unknown address"} ({why})");
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.Headers.WWWAuthenticate = "Bearer realm=\"trainer-dashboard\"";
        return context.Response.WriteAsJsonAsync(new ApiError(
            $"this dashboard needs its access token ({why}): send the header 'Authorization: Bearer TOKEN', "
            + $"or open /?{QueryName}=TOKEN once in a browser, which sets a cookie (docs/dashboard.md, Security)"), DashboardJson.Options);
    }

    /// <summary>The token of an `Authorization: Bearer TOKEN` header; null when there is no such header.</summary>
    private static string? Bearer(HttpRequest request)
    {
        StringValues header = request.Headers.Authorization;
        if (header.Count != 1 || header[0] is not { } value) return null;
        const string Scheme = "Bearer ";
        return value.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? value[Scheme.Length..].Trim() : null;
    }
}
