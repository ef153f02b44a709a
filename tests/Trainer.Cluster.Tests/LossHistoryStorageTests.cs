using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Storage;
using Orleans.TestingHost;
using Trainer.Abstractions;
using Trainer.Grains;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A job's record is rewritten at every checkpoint, so it must not grow with the step count: the
/// losses go to storage in chunks of <see cref="TrainerOptions.LossChunkSteps"/> steps, each written
/// once, and the record keeps only the losses after the last full chunk. A new activation of the
/// job grain reads its whole history back from them, and still reads records written before chunks.
/// </summary>
public sealed class LossHistoryStorageTests
{
    private const int ChunkSteps = 64;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheRecord_KeepsOnlyTheLossesAfterTheLastFullChunk_AndANewActivationReadsTheWholeHistoryBack()
    {
        await using var cluster = await StartAsync();
        var spec = Jobs.Small(workers: 2, steps: 1000) with { CheckpointEvery = 100 };
        var expected = Jobs.Local(spec);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token);
        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);

        // In storage: 15 full chunks of 64 losses, each the run's own, and the 40 after them in the record.
        var storage = StoredStates.Storage(cluster);
        var grain = cluster.Client.GetGrain<ITrainingJobGrain>(id).GetGrainId();
        var record = await StoredStates.ReadAsync<JobRecord>(storage, "job", grain);
        Assert.Equal((ChunkSteps, 15), (record.LossChunkSteps, record.SealedLossChunks));
        Assert.Equal(expected.Losses[(15 * ChunkSteps)..], Doubles(record.Losses));
        for (int chunk = 0; chunk < 15; chunk++)
            Assert.Equal(expected.Losses.AsSpan(chunk * ChunkSteps, ChunkSteps).ToArray(), Doubles((await StoredStates.ReadAsync<LossChunk>(storage, StoredLosses.StateName(chunk), grain)).Losses));

        // A new activation of the job grain rebuilds every loss from the chunks and the record.
        await DeactivateAsync(cluster, id);
        var reread = await cluster.Client.GetGrain<ITrainingJobGrain>(id).GetLossesAsync(1, 100_000, TimeSpan.Zero);
        Assert.Equal(JobState.Completed, reread.Status.State);
        Assert.Equal(expected.Losses, reread.Losses.Values.ToArray());
    }

    [Fact]
    public async Task ARecordWrittenBeforeChunks_WithEveryLossInIt_StillReadsBack()
    {
        await using var cluster = await StartAsync();
        var id = Jobs.NewId();
        var spec = Jobs.Small(workers: 1, steps: 3);
        double[] losses = [3.5, 2.25, 1.125];
        var record = new JobRecord
        {
            Status = new JobStatus(id, JobState.Completed, spec, 3, losses[0], losses[^1], null, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, 0.1, "synthetic", "normal"),
            Losses = Bytes(losses),
        };
        await StoredStates.Storage(cluster).WriteStateAsync("job", cluster.Client.GetGrain<ITrainingJobGrain>(id).GetGrainId(), new GrainState<JobRecord>(record));

        var batch = await cluster.Client.GetGrain<ITrainingJobGrain>(id).GetLossesAsync(1, 100, TimeSpan.Zero);

        Assert.Equal(JobState.Completed, batch.Status.State);
        Assert.Equal(losses, batch.Losses.Values.ToArray());
    }

    [Fact]
    public async Task AChunkMissingFromStorage_FailsTheJobGrainsActivation_NamingTheChunk()
    {
        await using var cluster = await StartAsync();
        var id = Jobs.NewId();
        var spec = Jobs.Small(workers: 1, steps: 200);
        var record = new JobRecord
        {
            Status = new JobStatus(id, JobState.Completed, spec, 200, 1, 1, null, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, 0.1, "synthetic", "normal"),
            Losses = Bytes(new double[200 - 3 * ChunkSteps]),
            LossChunkSteps = ChunkSteps,
            SealedLossChunks = 3,
        };
        var grain = cluster.Client.GetGrain<ITrainingJobGrain>(id).GetGrainId();
        var storage = StoredStates.Storage(cluster);
        await storage.WriteStateAsync("job", grain, new GrainState<JobRecord>(record));
        foreach (int chunk in new[] { 0, 2 })
            await storage.WriteStateAsync(StoredLosses.StateName(chunk), grain, new GrainState<LossChunk>(new LossChunk { Losses = Bytes(new double[ChunkSteps]) }));

        var error = await Assert.ThrowsAnyAsync<Exception>(() => cluster.Client.GetGrain<ITrainingJobGrain>(id).GetStatusAsync());

        Assert.Contains("nothing in loss chunk 1, which the job's record says holds 64", error.ToString());
    }

    [Fact]
    public async Task ALossChunkSizeBelowOne_StopsTheSiloFromStarting_NamingTheSettingAndItsValue()
    {
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer();
            silo.Services.Configure<TrainerOptions>(o => o.LossChunkSteps = 0);
        });
        await using var cluster = builder.Build();

        var error = await Assert.ThrowsAnyAsync<Exception>(() => cluster.DeployAsync(Token));

        Assert.Contains("Trainer:LossChunkSteps is 0; it must be at least 1", error.ToString());
    }

    /// <summary>
    /// Deactivates the finished job grain, and checks that no silo holds an activation of it (the
    /// silos' own lists: a grain-directory lookup may still answer the address of an activation that
    /// is gone). A finished job's grain still releases the job's other grains after its final status
    /// shows, and a busy activation is not collected, so collection is asked again, a bounded number of times.
    /// </summary>
    private static async Task DeactivateAsync(InProcessTestCluster cluster, string id)
    {
        var management = cluster.Client.GetGrain<IManagementGrain>(0);
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(id).GetGrainId();
#pragma warning disable xUnit1051 // the management grain's calls take no cancellation token
        async Task<bool> ActiveAsync() => (await management.GetDetailedGrainStatistics()).Any(s => s.GrainId == job);
        for (int attempt = 0; attempt < 100 && await ActiveAsync(); attempt++)
            await management.ForceActivationCollection(TimeSpan.Zero);
        Assert.False(await ActiveAsync(), $"job grain {job} is still active");
#pragma warning restore xUnit1051
    }

    private static byte[] Bytes(double[] values) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static double[] Doubles(byte[] bytes) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes).ToArray();

    private static async Task<InProcessTestCluster> StartAsync()
    {
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer();
            silo.Services.Configure<TrainerOptions>(o => o.LossChunkSteps = ChunkSteps);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }
}
