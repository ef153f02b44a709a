using Orleans.Runtime;
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
        // Held before the batch from step 101 (a batch never crosses a checkpoint step).
        var gate = CallGate.AtBatch(101);
        await using var cluster = await StartAsync(redis: null, configureSilo: silo => silo.AddOutgoingGrainCallFilter(gate.FilterAsync));
        var spec = Jobs.Small(workers: 3, steps: 300) with { CheckpointEvery = 50, CheckpointMinSeconds = 0 };
        var expected = Jobs.Local(spec);

        // Kill a silo that holds a worker but not the job grain (nor, beside it, the parameter server).
        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token,
            afterSubmit: (job, jobId) => KillAtGateAsync(cluster, gate, job, jobId, killTheJobsSilo: false));

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
    }

    [Fact]
    public async Task KillingTheParameterServerSilo_MidJob_ResumesFromItsCheckpoint_WithTheUndisturbedWeights()
    {
        await using var redis = await RedisServer.StartAsync();
        var gate = CallGate.AtBatch(101);
        await using var cluster = await StartAsync(redis.Endpoint, configureSilo: silo => silo.AddOutgoingGrainCallFilter(gate.FilterAsync));
        var spec = Jobs.Small(workers: 2, steps: 300) with { CheckpointEvery = 50, CheckpointMinSeconds = 0 };
        var expected = Jobs.Local(spec);

        // Kill the silo of the job grain, which also holds its parameter server.
        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token,
            afterSubmit: (job, jobId) => KillAtGateAsync(cluster, gate, job, jobId, killTheJobsSilo: true));

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
    }

    [Fact]
    public async Task KillingTheJobsSilo_OfAJobLargerThanOneMessage_ResumesFromItsCheckpointAndSamplesStoredInChunks_WithTheUndisturbedWeights()
    {
        await using var redis = await RedisServer.StartAsync();
        var gate = CallGate.AtBatch(101);
        await using var cluster = await StartAsync(redis.Endpoint, messageLimit: ChunkedTransferTests.Limit, configureSilo: silo => silo.AddOutgoingGrainCallFilter(gate.FilterAsync));
        // 675 KB of parameters and 320 KB of uploaded inputs against 256 KB messages: the checkpoint and
        // the samples are stored, and read back by the new job grain, in 64 KB chunks.
        var spec = Jobs.Small(workers: 2, steps: 400) with { Model = new Trainer.Core.Models.ModelSpec([200, 400, 10]), Batch = 200, LearningRate = 1e-5, CheckpointEvery = 50, CheckpointMinSeconds = 0 };
        var (submission, samples) = Jobs.UploadedSamples(spec, seed: 99);
        var expected = Jobs.Local(spec, samples);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, submission, Token,
            afterSubmit: (job, jobId) => KillAtGateAsync(cluster, gate, job, jobId, killTheJobsSilo: true),
            submit: job => job.UploadAndSubmitAsync(submission, WireLimits.ChunkBytesFor(ChunkedTransferTests.Limit)));

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(expected.Losses, losses);
        Assert.Equal(expected.Parameters, (await cluster.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync(WireLimits.ChunkBytesFor(ChunkedTransferTests.Limit))).ToArray());
    }

    [Fact]
    public async Task ASiloLostWhileAJobStarts_IsRetried_AndTheJobEndsWithTheUndisturbedWeights()
    {
        // The job's first call to its parameter server fails as a call to a silo that just died does.
        var failure = CallFailure.ServerStart(() => new TimeoutException("Response did not arrive on time (a silo lost while the job started)"));
        await using var cluster = await StartAsync(redis: null, configureSilo: silo => silo.AddOutgoingGrainCallFilter(failure.FilterAsync));
        var spec = Jobs.Small(workers: 3, steps: 60);
        var expected = Jobs.Local(spec);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token);

        Assert.True(failure.Failed, "the parameter server's start was never called");
        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
    }

    [Fact]
    public async Task AJobStartThatFailsWithABug_FailsTheJob_WithAOneLineMessage()
    {
        var failure = CallFailure.ServerStart(() => new InvalidOperationException("a bug at the start\n   at Somewhere.Deep() in File.cs:line 1"));
        await using var cluster = await StartAsync(redis: null, configureSilo: silo => silo.AddOutgoingGrainCallFilter(failure.FilterAsync));
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());

        await Assert.ThrowsAsync<InvalidOperationException>(() => job.SubmitAsync(Jobs.Synthetic(Jobs.Small(workers: 2))));

        var status = await job.GetStatusAsync();
        Assert.Equal(JobState.Failed, status.State);
        Assert.Equal("could not start: InvalidOperationException: a bug at the start (the silo log has the stack trace)", status.Message);
    }

    /// <summary>
    /// Waits until <paramref name="gate"/> holds the job's call for a batch of steps (a <see cref="CallGate.AtBatch"/>
    /// filter on every silo), then kills either the silo that hosts the job grain or another one that hosts a
    /// worker, and lets the call go: the silo is lost mid-job however fast the job's steps run.
    /// </summary>
    internal static Task KillAtGateAsync(InProcessTestCluster cluster, CallGate gate, ITrainingJobGrain job, string jobId, bool killTheJobsSilo) =>
        gate.WhileHeldAsync(async () =>
        {
            var management = cluster.Client.GetGrain<IManagementGrain>(0);
#pragma warning disable xUnit1051 // the management grain's lookup takes no cancellation token
            var jobSilo = await management.GetActivationAddress(job);
            var workerSilo = await management.GetActivationAddress(cluster.Client.GetGrain<IWorkerGrain>(0, jobId));
            if (!killTheJobsSilo && workerSilo == jobSilo) workerSilo = await management.GetActivationAddress(cluster.Client.GetGrain<IWorkerGrain>(1, jobId));
#pragma warning restore xUnit1051
            var target = killTheJobsSilo ? jobSilo : workerSilo;
            Assert.True(target is not null && (killTheJobsSilo || target != jobSilo), $"job on {jobSilo}, worker on {workerSilo}");
            await cluster.KillSiloAsync(cluster.Silos.Single(s => s.SiloAddress.Equals(target)));
        }, Token);

    /// <summary>Three silos with fast failure detection; <paramref name="redis"/>: membership and storage there, so a job grain outlives its silo.</summary>
    internal static async Task<InProcessTestCluster> StartAsync(string? redis, int? messageLimit = null, Action<ISiloBuilder>? configureSilo = null)
    {
        var builder = new InProcessTestClusterBuilder(3);
        if (messageLimit is { } clientLimit) builder.ConfigureClient(client => client.Configure<ClientMessagingOptions>(o => o.MaxMessageBodySize = clientLimit));
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer(settings: new SiloSettings { Redis = redis });
            if (messageLimit is { } limit) silo.Configure<SiloMessagingOptions>(o => o.MaxMessageBodySize = limit);
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
                // Small chunks of losses, so that a resumed job grain reads several back (from Redis in the second test).
                o.LossChunkSteps = 40;
            });
            configureSilo?.Invoke(silo);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }
}
