using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Trainer.Core;
using Trainer.Core.Linalg;
using Trainer.Dashboard;
using Trainer.Hosting;

// One silo of a Trainer cluster. Settings layer the standard .NET way: appsettings.json, then
// environment variables (Silo__SiloPort=11112), then the command line (--silo-port 11112).
// Addresses (docs/operations.md): --advertise ADDRESS (what other silos and clients reach this silo
// at; default 127.0.0.1), --listen ADDRESS (what it binds; default the advertised one, 0.0.0.0 for
// every interface), --primary-address with --primary-port (localhost clustering's primary silo).
// TLS (docs/operations.md, "TLS and authentication"): --tls-cert cluster.pfx [--tls-password P, or
// TRAINER_TLS_PASSWORD], or --tls-cert cert.pem --tls-key key.pem: the cluster's certificate, which
// every silo and client must present.
// Dashboard (docs/dashboard.md): --dashboard-port P [--dashboard-address A]; beyond loopback a token is
// required, best from a file (--dashboard-token-file F; --dashboard-token T shows it to `ps`).
// Exit code 2: a setting is not allowed or cannot be used (e.g. the dashboard's port is in use);
// the message names it, and the silo never joined the cluster.
var builder = Host.CreateApplicationBuilder(args);
builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
{
    ["--cluster-id"] = "Silo:ClusterId",
    ["--service-id"] = "Silo:ServiceId",
    ["--silo-port"] = "Silo:SiloPort",
    ["--gateway-port"] = "Silo:GatewayPort",
    ["--primary-port"] = "Silo:PrimarySiloPort",
    ["--primary-address"] = "Silo:PrimarySiloAddress",
    ["--advertise"] = "Silo:AdvertisedAddress",
    ["--listen"] = "Silo:ListenAddress",
    ["--link-port"] = "Trainer:SplitLinkPort",
    ["--link-address"] = "Trainer:SplitLinkAddress",
    ["--blas-threads"] = "Trainer:BlasThreads",
    ["--redis"] = "Silo:Redis",
    ["--clustering"] = "Silo:Clustering",
    ["--dashboard-port"] = DashboardSettings.PortKey,
    ["--dashboard-address"] = DashboardSettings.AddressKey,
    ["--dashboard-token"] = DashboardSettings.TokenKey,
    ["--dashboard-token-file"] = DashboardSettings.TokenFileKey,
    ["--tls-cert"] = "Silo:TlsCertificate",
    ["--tls-key"] = "Silo:TlsKey",
    ["--tls-password"] = "Silo:TlsPassword",
});
var settings = builder.Configuration.GetSection(SiloSettings.Section).Get<SiloSettings>() ?? new SiloSettings();
try
{
    var certificate = settings.Tls.Load();
    builder.UseOrleans(silo =>
    {
        silo.UseTrainerClustering(settings).AddTrainer(builder.Configuration, settings).GuardInternalGrains();
        if (certificate is not null) silo.UseClusterTls(certificate);
    });

    using var host = builder.Build();
    var log = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Trainer.Silo");
    var blas = Blas.Default;
    var (advertised, listen, _) = settings.Addresses();
    log.LogInformation("Silo starting: cluster {Cluster}, address {Address} (listening on {Listen}), silo port {SiloPort}, gateway {GatewayPort}, primary {Primary}, GEMM backend {Backend}, {Tls}",
        settings.ClusterId, advertised, listen, settings.SiloPort, settings.GatewayPort, $"{settings.PrimarySiloAddress}:{settings.PrimarySiloPort}", Blas.Describe(blas),
        certificate is null ? "no TLS (no --tls-cert)" : $"TLS with the cluster certificate {certificate.Certificate.Subject} (SHA-1 {certificate.Certificate.Thumbprint}, valid until {certificate.Certificate.NotAfter:yyyy-MM-dd})");
    await host.StartAsync();
    var dashboard = TrainerDashboard.Url(host.Services);
    log.LogInformation("Silo ready: gateway {Gateway}{Dashboard}", new IPEndPoint(advertised, settings.GatewayPort), dashboard is null ? "" : $", dashboard {dashboard}");
    // A supervisor (cluster.sh stop, a Kubernetes rolling update) stops a silo with SIGTERM: it leaves the
    // membership, its grains deactivate, and jobs go on on the others; these lines say when that began and ended.
    var stopping = System.Diagnostics.Stopwatch.StartNew();
    host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() =>
    {
        stopping.Restart();
        log.LogInformation("Silo stopping: leaving the cluster; its jobs go on on the other silos, if any");
    });
    await host.WaitForShutdownAsync();
    log.LogInformation("Silo stopped after {Seconds:F1} s", stopping.Elapsed.TotalSeconds);
    return 0;
}
catch (Exception e) when (SettingError(e) is { } message)
{
    Console.Error.WriteLine($"trainer-silo: error: {message}");
    return 2;
}

// The message of a setting that is not allowed, wherever start-up wrapped it; null for any other failure.
static string? SettingError(Exception? e) => e switch
{
    null => null,
    SpecException or OptionsValidationException => e.Message,
    AggregateException a => a.InnerExceptions.Select(SettingError).FirstOrDefault(m => m is not null),
    _ => SettingError(e.InnerException),
};
