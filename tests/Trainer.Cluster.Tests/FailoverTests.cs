using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.TestingHost;
using Trainer.Abstractions;
using Trainer.Grains;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Silos die mid-job; the job must finish by itself with the same bits as an undisturbed run.
/// Each test gets its own cluster (they kill silos) with fast failure detection.
/// </summary>
public sealed class FailoverTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task KillingAWorkerSilo_MidJob_FinishesWithTheUndisturbedWeights()
    {
        await using var cluster = await StartAsync(redis: null);
        var spec = Jobs.Small(workers: 3, steps: 1500) with { CheckpointEvery = 50 };
        var expected = Jobs.Local(spec);

        // The job grain and parameter server live on the oldest silo (0); silo 2 holds worker 2 only.
        var run = Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token, afterSubmit: (job, id) => KillAfterAsync(cluster, job, cluster.Silos[2], 100));
        var (id, status, losses) = await run;

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(expected.Losses, losses);
        Assert.Equal(expected.Parameters, (await cluster.Client.GetGrain<ITrainingJobGrain>(id).GetParametersAsync()).ToArray());
    }

    [Fact]
    public async Task KillingTheParameterServerSilo_MidJob_ResumesFromItsCheckpoint_WithTheUndisturbedWeights()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var cluster = await StartAsync(redis.Endpoint);
        var spec = Jobs.Small(workers: 2, steps: 1500) with { CheckpointEvery = 50 };
        var expected = Jobs.Local(spec);

        // Silo 0 is the oldest: it holds the job grain, its parameter server and the registry.
        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token,
            afterSubmit: (job, _) => KillAfterAsync(cluster, job, cluster.Silos[0], 120));

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(expected.Losses, losses);
        Assert.Equal(expected.Parameters, (await cluster.Client.GetGrain<ITrainingJobGrain>(id).GetParametersAsync()).ToArray());
    }

    /// <summary>Waits (by the job's own progress, not the clock) until it has done some steps, then kills the silo.</summary>
    private static async Task KillAfterAsync(InProcessTestCluster cluster, ITrainingJobGrain job, InProcessSiloHandle silo, int steps)
    {
        while ((await job.GetLossesAsync(steps, 1, TimeSpan.FromSeconds(5))).Status.StepsCompleted < steps) Token.ThrowIfCancellationRequested();
        await cluster.KillSiloAsync(silo);
    }

    private static async Task<InProcessTestCluster> StartAsync(string? redis)
    {
        var builder = new InProcessTestClusterBuilder(3);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer(settings: new SiloSettings { Redis = redis });
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = TimeSpan.FromSeconds(1);
                o.NumMissedProbesLimit = 2;
                o.NumVotesForDeathDeclaration = 1;
            });
            silo.Services.Configure<TrainerOptions>(o =>
            {
                o.SupervisorPeriod = TimeSpan.FromMilliseconds(500);
                o.WorkerRetryBudget = TimeSpan.FromSeconds(60);
            });
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }
}
