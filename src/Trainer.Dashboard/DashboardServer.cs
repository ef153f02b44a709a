using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Dashboard;
using Trainer.Core;
using Trainer.Grains;

namespace Trainer.Dashboard;

/// <summary>
/// Serves the dashboard from inside a silo's host: a small ASP.NET Core app of its own (Kestrel on
/// <see cref="DashboardSettings.Address"/>:<see cref="DashboardSettings.Port"/>) whose endpoints read
/// the cluster through the silo's own grain factory, with Orleans' dashboard under <see cref="OrleansPath"/>.
/// Every path asks for the token when there is one (<see cref="DashboardAccess"/>), and the app
/// speaks HTTPS with the cluster's certificate when the silo runs TLS (<see cref="ClusterCertificate"/>).
/// It binds its port before the silo starts (<see cref="StartingAsync"/> runs before any hosted
/// service's StartAsync), so a port that cannot be used stops the host before the silo joins the
/// cluster; and it stops serving before the silo leaves.
/// </summary>
/// <param name="shared">The silo's services the app resolves from the silo (by type, singletons).</param>
internal sealed class DashboardServer(IServiceProvider silo, DashboardSettings settings, IReadOnlyList<Type> shared, ILogger<DashboardServer> logger)
    : IHostedLifecycleService
{
    /// <summary>Where Orleans' own dashboard is mounted.</summary>
    public const string OrleansPath = "/orleans";

    /// <summary>How long requests in flight may take to finish when the silo stops.</summary>
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(2);

    private readonly ClusterCertificate? _certificate = silo.GetService<ClusterCertificate>();
    private WebApplication? _app;

    /// <summary>The page's address (without the token).</summary>
    public string Url => settings.UrlFor(https: _certificate is not null);

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        var app = Build();
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw Unusable(e);
        }
        _app = app;
        logger.LogInformation("Dashboard on {Url}, Orleans' dashboard on {OrleansUrl}: {Transport}, {Access}", Url, $"{Url.TrimEnd('/')}{OrleansPath}/",
            _certificate is null ? "HTTP" : $"HTTPS with the cluster's certificate {_certificate.Certificate.Subject} (SHA-1 {_certificate.Certificate.Thumbprint})",
            settings.Token is null ? $"no token (open to whoever reaches {settings.Address})" : "every request needs the token (Authorization: Bearer TOKEN, or ?token=TOKEN once in a browser)");
        if (_certificate is null && settings.Token is not null && !IPAddress.IsLoopback(settings.Address))
            logger.LogWarning("The dashboard on {Address} speaks plain HTTP: its token and pages cross the network unencrypted. Run the cluster with TLS (--tls-cert), which serves it over HTTPS, or reach it through an SSH tunnel (docs/dashboard.md, Security)",
                settings.Address);
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (_app is not { } app) return;
        _app = null;
        // NOTE: a request that streams (Orleans' /orleans/Trace, open for an hour) would hold the
        // silo's shutdown for the host's whole timeout; requests get a short grace, then are cut.
        using var grace = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        grace.CancelAfter(StopGrace);
        await app.StopAsync(grace.Token);
        await app.DisposeAsync();
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private WebApplication Build()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = typeof(DashboardServer).Assembly.GetName().Name });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(settings.Address, settings.Port, listen =>
        {
            // A browser has no client certificate: only the server side of the cluster's TLS applies here.
            if (_certificate is not null) listen.UseHttps(_certificate.Certificate);
        }));
        builder.Services.AddRoutingCore();
        builder.Services.AddLogging();
        // The silo's logging, and its lifetime alone answers SIGTERM: this app is stopped with the silo.
        builder.Services.Replace(ServiceDescriptor.Singleton<ILoggerFactory>(new InnerLogging(silo.GetRequiredService<ILoggerFactory>())));
        builder.Services.Replace(ServiceDescriptor.Singleton<IHostLifetime, InnerLifetime>());
        foreach (var type in shared) builder.Services.AddSingleton(type, _ => silo.GetRequiredService(type));
        builder.Services.AddSingleton<DashboardApi>();

        var app = builder.Build();
        if (settings.Token is { } token)
        {
            var access = new DashboardAccess(token, settings.Port, https: _certificate is not null, logger);
            app.Use(access.InvokeAsync); // ahead of every endpoint, Orleans' dashboard's too
        }
        app.MapGet("/", () => Results.Text(DashboardPage.Html, "text/html; charset=utf-8"));
        DashboardApi.Map(app);
        app.MapOrleansDashboard(OrleansPath);
        return app;
    }

    private SpecException Unusable(IOException e)
    {
        if (e.InnerException is AddressInUseException)
            return new SpecException(DashboardSettings.PortKey, settings.Port,
                $"allowed: a port free on {settings.Address}; {settings.Port} is in use there (another silo's dashboard, or another program), so choose another, e.g. --dashboard-port {settings.Port + 100}");
        return new SpecException(DashboardSettings.AddressKey, $"{settings.Address}:{settings.Port}",
            $"allowed: an address of this machine and a port this silo may listen on ({e.InnerException?.Message ?? e.Message})");
    }

    /// <summary>
    /// The silo's logging, less this app's host: its start failure (a port in use) comes back to
    /// <see cref="StartingAsync"/>, which says it once, in the words of the setting.
    /// </summary>
    private sealed class InnerLogging(ILoggerFactory silo) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) =>
            categoryName.StartsWith("Microsoft.Extensions.Hosting", StringComparison.Ordinal) ? NullLogger.Instance : silo.CreateLogger(categoryName);

        public void AddProvider(ILoggerProvider provider) => silo.AddProvider(provider);

        public void Dispose() { } // the silo's, disposed with the silo
    }

    /// <summary>Neither waits for nor handles a signal: the silo's host does, and stops this app through <see cref="StoppingAsync"/>.</summary>
    private sealed class InnerLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
