using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Trainer.Dashboard;

/// <summary>How a silo gets its web dashboard (see docs/dashboard.md).</summary>
public static class TrainerDashboard
{
    /// <summary>
    /// Serves the dashboard when <paramref name="configuration"/> sets <see cref="DashboardSettings.PortKey"/>
    /// (nothing otherwise), with Orleans' dashboard beside it. Throws <see cref="Trainer.Core.SpecException"/>
    /// for a setting that is not allowed, before anything starts.
    /// </summary>
    public static ISiloBuilder AddTrainerDashboard(this ISiloBuilder silo, IConfiguration configuration)
    {
        var settings = DashboardSettings.From(configuration);
        if (!settings.Enabled) return silo;
        // NOTE: Orleans' dashboard needs its services on every silo of the cluster (its grains run
        // anywhere): turn the dashboard on for all silos or none, as deploy/local/cluster.sh does.
        silo.AddDashboard();
        // The dashboard's app has a container of its own; the services it shares with the silo are
        // resolved from the silo, so they are the silo's instances (its grain factory; Orleans'
        // dashboard client and the log sink of its /orleans/Trace, internal types named only here).
        var orleansDashboard = typeof(DashboardOptions).Assembly;
        Type[] shared =
        [
            typeof(IGrainFactory), typeof(ILocalSiloDetails), typeof(ISiloMetadataCache), typeof(IOptions<DashboardOptions>),
            .. silo.Services.Where(d => d.ServiceType.Assembly == orleansDashboard && d is { Lifetime: ServiceLifetime.Singleton, IsKeyedService: false }
                    && !d.ServiceType.ContainsGenericParameters)
                .Select(d => d.ServiceType).Distinct(),
        ];
        silo.Services.AddSingleton(settings);
        silo.Services.AddSingleton(sp => ActivatorUtilities.CreateInstance<DashboardServer>(sp, (IReadOnlyList<Type>)shared));
        silo.Services.AddHostedService(sp => sp.GetRequiredService<DashboardServer>());
        return silo;
    }

    /// <summary>The address of the dashboard a silo's <paramref name="services"/> serve (https:// when the silo runs TLS), never with its token; null: none.</summary>
    public static string? Url(IServiceProvider services) => services.GetService<DashboardServer>()?.Url;
}
