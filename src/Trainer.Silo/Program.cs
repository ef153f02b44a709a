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
if (args.Any(a => a is "--help" or "-h" or "-?") || args is ["help"])
{
    Console.Out.Write(Usage.Text);
    return 0;
}
if (Usage.Stray(args) is { } stray)
{
    Console.Error.WriteLine($"trainer-silo: error: argument '{stray}' is not allowed; allowed: options as --name value or --name=value (trainer-silo --help lists them)");
    return 2;
}
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
try
{
    var settings = builder.Configuration.GetSection(SiloSettings.Section).Get<SiloSettings>() ?? new SiloSettings();
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
    // The configuration binder's refusal of a value of the wrong type (--clustering foo, --silo-port abc), when
    // the settings are read or when the silo's options are first asked for.
    InvalidOperationException when Unconvertible().Match(e.Message) is { Success: true } m => $"{m.Groups["key"].Value}: '{m.Groups["value"].Value}' is not allowed; "
        + $"allowed: {Allowed(m.Groups["type"].Value)} (trainer-silo --help lists the settings)",
    AggregateException a => a.InnerExceptions.Select(SettingError).FirstOrDefault(m => m is not null),
    _ => SettingError(e.InnerException),
};

// What a value of a setting's type may be, from the type's name the binder gives.
static string Allowed(string typeName) => (Type.GetType(typeName) ?? AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetType(typeName)).FirstOrDefault(t => t is not null)) switch
{
    { IsEnum: true } type => string.Join(", ", Enum.GetNames(type).Select(n => n.ToLowerInvariant())),
    var type when type == typeof(TimeSpan) => "a time span, hh:mm:ss",
    var type when type == typeof(int) || type == typeof(long) => "a whole number",
    var type when type == typeof(double) => "a number",
    var type when type == typeof(bool) => "true or false",
    _ => $"a value of type {typeName}",
};

// "Failed to convert configuration value 'foo' at 'Silo:Clustering' to type 'Trainer.Hosting.ClusteringKind'."
static System.Text.RegularExpressions.Regex Unconvertible() =>
    new(@"Failed to convert configuration value '(?<value>.*?)' at '(?<key>[^']*)' to type '(?<type>[^']*)'");

// What `trainer-silo --help` prints: every option of the map above, and the configuration forms it stands for.
static class Usage
{
    /// <summary>
    /// The first argument that is neither an option nor an option's value, or null. The configuration's
    /// command-line source skips such words silently, so `trainer-silo trainer list` (a container's
    /// command meant for the CLI) would start a silo.
    /// </summary>
    public static string? Stray(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            var option = args[i].StartsWith('-') || args[i].StartsWith('/');
            if (!option) return args[i];
            if (!args[i].Contains('=')) i++;
        }
        return null;
    }

    public const string Text = """
        trainer-silo: one silo of a Trainer cluster. It runs until SIGTERM or Ctrl+C (it then leaves the
        cluster, and its jobs go on on the other silos).

        Usage: trainer-silo [options]

        Addresses and membership (docs/operations.md, "Ports and addresses"):
          --advertise ADDRESS        the IP address other silos and clients reach this silo at
                                     [default 127.0.0.1]; auto: this host's first IPv4 address on a
                                     network interface other than loopback (containers, pods)
          --listen ADDRESS           the address the silo and gateway ports bind; 0.0.0.0: every
                                     interface [default: the advertised address]
          --silo-port PORT           silo-to-silo port [default 11111]
          --gateway-port PORT        clients' port [default 30000]
          --clustering KIND          localhost (the primary silo holds the membership) or redis
                                     [default localhost]
          --redis HOST:PORT          the Redis server: membership with --clustering redis, and job
                                     records and checkpoints that outlive every silo
          --primary-address ADDRESS  localhost clustering: the primary silo's address [default 127.0.0.1]
          --primary-port PORT        localhost clustering: the primary silo's port [default 11111]
          --cluster-id ID            [default trainer]
          --service-id ID            [default trainer]
          --link-port PORT           split jobs' worker links [default 0: a free port]
          --link-address ADDRESS     [default: the advertised address]

        Compute:
          --blas-threads N           threads one matrix product may use, in either backend
                                     [default 1; 0: the silo's cores shared among its workers]

        Dashboard (docs/dashboard.md):
          --dashboard-port PORT      serve the web dashboard [default: none]
          --dashboard-address ADDR   [default 127.0.0.1; any other needs a token]
          --dashboard-token-file F   the dashboard's access token, from a file
          --dashboard-token T        the token itself (visible to ps)

        TLS (docs/operations.md, "TLS and authentication"):
          --tls-cert FILE            the cluster's certificate: a .pfx, or PEM with --tls-key
          --tls-key FILE             the PEM private key
          --tls-password P           of the .pfx or the key [default: TRAINER_TLS_PASSWORD]

        Every setting also has a configuration key, set in appsettings.json beside the binary, as an
        environment variable with __ for : (Silo__AdvertisedAddress=auto, Trainer__BlasThreads=2), or
        as --Section:Key=value (--Trainer:WorkerRetryBudget=00:02:00); docs/configuration.md lists them.
        Exit code 2: a setting is not allowed or cannot be used; the message names it.

        """;
}
