using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Trainer.Core.Linalg;
using Trainer.Grains;

namespace Trainer.Hosting;

/// <summary>The one place that says what a Trainer silo is made of.</summary>
public static class TrainerSilo
{
    /// <summary>Grains, placement, storage and options every Trainer silo needs (any clustering).</summary>
    public static ISiloBuilder AddTrainer(this ISiloBuilder silo, IConfiguration? configuration = null)
    {
        silo.AddPlacementDirector<RankPlacement, RankPlacementDirector>();
        silo.AddMemoryGrainStorage(StorageNames.Jobs);
        var options = silo.Services.AddOptions<TrainerOptions>();
        if (configuration is not null) options.Bind(configuration.GetSection(TrainerOptions.Section));
        silo.Services.PostConfigure<TrainerOptions>(o =>
        {
            if (o.BlasThreads > 0) Blas.SystemOpenBlas?.SetThreads(o.BlasThreads);
        });
        // NOTE: job grains keep themselves alive with a timer while running; everything else may be collected when idle.
        silo.Configure<GrainCollectionOptions>(o => o.CollectionAge = TimeSpan.FromMinutes(30));
        return silo;
    }

    /// <summary>Localhost clustering for a silo of a local multi-process cluster.</summary>
    public static ISiloBuilder UseTrainerLocalCluster(this ISiloBuilder silo, SiloSettings settings)
    {
        silo.UseLocalhostClustering(settings.SiloPort, settings.GatewayPort,
            new IPEndPoint(IPAddress.Loopback, settings.PrimarySiloPort), settings.ServiceId, settings.ClusterId);
        return silo;
    }
}
