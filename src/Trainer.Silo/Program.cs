using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Trainer.Core.Linalg;
using Trainer.Hosting;

// One silo of a Trainer cluster. Settings layer the standard .NET way: appsettings.json, then
// environment variables (Silo__SiloPort=11112), then the command line (--silo-port 11112).
var builder = Host.CreateApplicationBuilder(args);
builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
{
    ["--cluster-id"] = "Silo:ClusterId",
    ["--service-id"] = "Silo:ServiceId",
    ["--silo-port"] = "Silo:SiloPort",
    ["--gateway-port"] = "Silo:GatewayPort",
    ["--primary-port"] = "Silo:PrimarySiloPort",
    ["--blas-threads"] = "Trainer:BlasThreads",
    ["--redis"] = "Silo:Redis",
    ["--clustering"] = "Silo:Clustering",
});
var settings = builder.Configuration.GetSection(SiloSettings.Section).Get<SiloSettings>() ?? new SiloSettings();
builder.UseOrleans(silo => silo.UseTrainerClustering(settings).AddTrainer(builder.Configuration, settings));

using var host = builder.Build();
var log = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Trainer.Silo");
var blas = Blas.Default;
log.LogInformation("Silo starting: cluster {Cluster}, silo port {SiloPort}, gateway {GatewayPort}, primary {Primary}, GEMM backend {Backend}",
    settings.ClusterId, settings.SiloPort, settings.GatewayPort, settings.PrimarySiloPort, Blas.Describe(blas));
await host.StartAsync();
log.LogInformation("Silo ready: gateway 127.0.0.1:{GatewayPort}", settings.GatewayPort);
await host.WaitForShutdownAsync();
