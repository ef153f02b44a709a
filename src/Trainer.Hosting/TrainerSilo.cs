using Trainer.Abstractions;
using Microsoft.Extensions.Hosting;
using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Runtime.Hosting;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Storage;
using StackExchange.Redis;
using Trainer.Core.Linalg;
using Trainer.Dashboard;
using Trainer.Grains;

namespace Trainer.Hosting;

/// <summary>The one place that says what a Trainer silo is made of.</summary>
public static class TrainerSilo
{
    /// <summary>How often a silo writes its heartbeat to the membership table (Orleans' IAmAliveTablePublishTimeout; Orleans' default is 30 s).</summary>
    public static readonly TimeSpan MembershipHeartbeat = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Grains, placement, job storage, the job supervisor and options every Trainer silo needs
    /// (any clustering). Job records go to memory storage unless <see cref="SiloSettings.Redis"/> is set.
    /// The web dashboard is served when <paramref name="configuration"/> sets Trainer:DashboardPort
    /// (<see cref="DashboardSettings"/>; a setting that is not allowed throws <see cref="Trainer.Core.SpecException"/> here).
    /// </summary>
    public static ISiloBuilder AddTrainer(this ISiloBuilder silo, IConfiguration? configuration = null, SiloSettings? settings = null)
    {
        // NOTE: grain state in Orleans' binary format, not the default System.Text.Json, which cannot
        // round-trip the core's immutable specs (a checkpoint read back with the wrong model is worse than none).
        silo.Services.AddSingleton<IGrainStorageSerializer, ExactSizeStorageSerializer>();
        // NOTE: the default directory deactivates live grains whose directory entry was owned by a dead silo,
        // which would restart a healthy job; the distributed directory hands entries over instead.
#pragma warning disable ORLEANSEXP003 // experimental in Orleans 10
        silo.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003
        silo.AddPlacementDirector<RankPlacement, RankPlacementDirector>();
        silo.AddPlacementDirector<OldestSiloPlacement, OldestSiloPlacementDirector>();
        silo.AddPlacementDirector<ShardPlacement, ShardPlacementDirector>();
        silo.AddPlacementDirector<ServerPlacement, ServerPlacementDirector>();
        if (settings?.Redis is { Length: > 0 } redis)
            silo.AddRedisGrainStorage(StorageNames.Jobs, o => o.ConfigurationOptions = ConfigurationOptions.Parse(redis));
        else
            silo.Services.AddGrainStorage(StorageNames.Jobs, BlockMemoryGrainStorage.Create);

        var options = silo.Services.AddOptions<TrainerOptions>().ValidateOnStart();
        silo.Services.AddSingleton<IValidateOptions<TrainerOptions>, TrainerOptionsValidation>();
        if (configuration is not null)
        {
            options.Bind(configuration.GetSection(TrainerOptions.Section));
            // Failure detection (ProbeTimeout, NumMissedProbesLimit, ...) from "Silo:Membership".
            silo.Configure<ClusterMembershipOptions>(configuration.GetSection($"{SiloSettings.Section}:Membership"));
        }
        silo.Services.PostConfigure<TrainerOptions>(o =>
        {
            if (o.BlasThreads > 0) Blas.SetThreads(o.BlasThreads);
        });
        silo.Services.AddHostedService<JobSupervisor>();
        if (configuration is not null) silo.AddTrainerDashboard(configuration);
        silo.Services.AddSingleton(sp =>
        {
            int threads = sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<TrainerOptions>>().Value.ComputeThreads;
            return new ComputeScheduler(threads > 0 ? threads : Environment.ProcessorCount);
        });
        silo.Services.AddSingleton<GemmThreadBudget>();
        // Each silo publishes the GEMM kernels it runs; a job computes on one every silo runs (GemmKernels).
        silo.UseSiloMetadata(GemmKernels.Metadata());
        silo.Services.AddSingleton<GemmKernels>();
        // Where a job's grains may run: the silos that run its kernel (placement, thread budget, parameter server).
        silo.Services.AddSingleton<JobSilos>();
        // TLS on the workers' links when the silo has the cluster's certificate (ClusterTls.UseClusterTls).
        silo.Services.AddSingleton(sp => new LinkSecurity(sp.GetService<ClusterCertificate>()));
        silo.Services.AddSingleton<WorkerLinks>();
        silo.Services.AddSingleton<StepTeams>();
        silo.Services.AddSingleton<StagingQuota>();
        silo.LimitInboundConnections();
        // Uploaded rows, fetched once per silo and shared by the grains of their job on it.
        silo.Services.AddSingleton<SiloUploads>();
        silo.Services.AddSingleton(sp => IdleMemory.ForProcess(sp.GetRequiredService<IOptions<TrainerOptions>>().Value.IdleCollectionDelay,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<IdleMemory>()));
        // The data files of --data-on-silos jobs, opened once per silo and shared by its grains; errors name the silo.
        // An embedded silo may be given its client's instead, the files its job reads in place already open.
        silo.Services.TryAddSingleton(sp => new StoredFiles(sp.GetRequiredService<Orleans.Runtime.ILocalSiloDetails>().SiloAddress.Endpoint.ToString(),
            sp.GetRequiredService<IOptions<TrainerOptions>>().Value.DataRoots));
        // NOTE: running jobs keep their grains busy; idle ones may be collected and reload from storage.
        silo.Configure<GrainCollectionOptions>(o => o.CollectionAge = TimeSpan.FromMinutes(30));
        // NOTE: Orleans sizes its grain directory caches for 1,000,000 entries up front: two 9.3 MB
        // arrays of references per silo, which every full collection walks, so they become resident.
        // A job has a handful of grains (and the cache is an LRU: a miss costs one directory lookup).
        // Measured (2 silo processes, after a 3000-step data-parallel seed job): 8-11 MB less resident per silo.
        silo.Configure<GrainDirectoryOptions>(o => o.CacheSize = 10_000);
        return silo;
    }

    /// <summary>
    /// Clients that reach this silo's gateway may call only jobs' grains and the job list
    /// (<see cref="ClientCallGuard"/>); workers, parameter servers, datasets and stores refuse them.
    /// Not part of <see cref="AddTrainer"/>: in-memory test clusters call those grains from their client on purpose.
    /// </summary>
    public static ISiloBuilder GuardInternalGrains(this ISiloBuilder silo) => silo.AddIncomingGrainCallFilter<ClientCallGuard>();

    /// <summary>
    /// Addresses and membership for a silo of a cluster: it advertises <see cref="SiloSettings.AdvertisedAddress"/>
    /// and listens on <see cref="SiloSettings.ListenAddress"/>; localhost clustering (the primary silo
    /// holds the table) or Redis. A setting that is not allowed throws <see cref="Trainer.Core.SpecException"/>.
    /// </summary>
    public static ISiloBuilder UseTrainerClustering(this ISiloBuilder silo, SiloSettings settings)
    {
        var (advertised, listen, primary) = settings.Addresses();
        silo.Configure<EndpointOptions>(o =>
        {
            o.AdvertisedIPAddress = advertised;
            (o.SiloPort, o.GatewayPort) = (settings.SiloPort, settings.GatewayPort);
            o.SiloListeningEndpoint = new IPEndPoint(listen, settings.SiloPort);
            o.GatewayListeningEndpoint = new IPEndPoint(listen, settings.GatewayPort);
        });
        silo.Configure<ClusterOptions>(o => { o.ClusterId = settings.ClusterId; o.ServiceId = settings.ServiceId; });
        // NOTE: a starting silo joins only once every silo the membership table lists as active has
        // answered it or been declared dead. After the whole cluster was killed, the table lists every
        // old silo as active: a restarted silo marks its own old entry dead at once, but the entry of
        // a silo that does not come back is probed (and voted dead) only once it is stale, when it has
        // missed NumMissedTableIAmAliveLimit (3) heartbeats. Orleans' 30 s heartbeat made joiners wait
        // ~90 s; at 5 s the entry is stale after 15 s. The heartbeat is one small write per silo.
        // Configured before Silo:Membership is bound (AddTrainer), which may override it.
        silo.Configure<ClusterMembershipOptions>(o => o.IAmAliveTablePublishTimeout = MembershipHeartbeat);
        if (settings.Clustering == ClusteringKind.Redis)
        {
            if (settings.Redis is not { Length: > 0 } redis)
                throw new InvalidOperationException("Silo:Clustering is redis but Silo:Redis (host:port of the Redis server) is not set.");
            silo.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse(redis));
        }
        else
        {
            silo.UseDevelopmentClustering(new IPEndPoint(primary, settings.PrimarySiloPort));
        }
        return silo;
    }
}
