using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.Runtime;
using Orleans.Storage;
using Orleans.TestingHost;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Training;
using Trainer.Grains;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Three silos and a client whose messages may carry at most 256 KB, and a model of 675 KB
/// (84,410 float64 parameters): every path that carries the whole model (uploaded initial
/// parameters, parameters to the workers, their shares at checkpoints, the checkpoint and the
/// final weights in storage, a restore, the weights a client reads) must go in chunks, or the job
/// cannot finish. It must end with exactly the single-process run's bits.
/// </summary>
[Collection(Name)]
public sealed class ChunkedTransferTests(ChunkedTransferTests.SmallMessages fixture)
{
    public const string Name = "three silos, 256 KB messages";

    public const int Limit = 256 << 10;

    private static int ChunkBytes => WireLimits.ChunkBytesFor(Limit);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static TrainingSpec Spec(Parallelism parallelism, int workers = 3) => Jobs.Small(workers, steps: 60) with
    {
        Model = new ModelSpec([200, 400, 10]),
        Parallelism = parallelism,
        CheckpointEvery = 10,
        CheckpointMinSeconds = 0,
    };

    [Fact]
    public void TheModel_IsLargerThanOneMessage_SoNoWholeModelMessageCouldCarryIt()
    {
        int bytes = ParameterLayout.For(Spec(Parallelism.Data).Model).Count * sizeof(double);

        Assert.True(bytes > Limit, $"{bytes} bytes");
        Assert.Equal(Limit, ((InProcessSiloHandle)fixture.Cluster.Silos[0]).ServiceProvider.GetRequiredService<Microsoft.Extensions.Options.IOptions<SiloMessagingOptions>>().Value.MaxMessageBodySize);
        Assert.Equal(Limit, fixture.Cluster.Client.ServiceProvider.GetRequiredService<Microsoft.Extensions.Options.IOptions<ClientMessagingOptions>>().Value.MaxMessageBodySize);
    }

    [Theory]
    [InlineData(Parallelism.Data)]
    [InlineData(Parallelism.SplitFirstLayer)]
    public async Task AJobLargerThanOneMessage_StartsFromUploadedParameters_CheckpointsInChunks_AndEndsWithTheSingleProcessRunsBits(Parallelism parallelism)
    {
        var spec = Spec(parallelism);
        var initial = Initializer.Create(ParameterLayout.For(spec.Model), InitKind.He, seed: 5);
        var expected = Jobs.Local(spec, initial: initial);
        var submission = Jobs.Synthetic(spec) with { InitialParameters = TensorPayload.From(initial), InitDescription = "uploaded" };

        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, submission, Token,
            submit: job => job.UploadAndSubmitAsync(submission, ChunkBytes));

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(expected.Losses, losses);
        Assert.Equal(expected.Parameters, (await fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync(ChunkBytes)).ToArray());
        await AssertStoredInChunksAsync(id, ParameterLayout.For(spec.Model).Count * sizeof(double));
    }

    [Fact]
    public async Task UploadedSamplesLargerThanOneMessage_AreUploadedStoredAndShardedInChunks_AndTheJobEndsWithTheSingleProcessRunsBits()
    {
        // 200 samples of 200 inputs: 320 KB of inputs; each worker's shard (67 rows, 107 KB) is larger than a chunk too.
        // (At lr 1e-3 this job diverges; DataParallelTests covers that case.)
        var spec = Spec(Parallelism.Data) with { Batch = 200, Steps = 30, LearningRate = 1e-5 };
        var (submission, samples) = Jobs.UploadedSamples(spec, seed: 99);
        var expected = Jobs.Local(spec, samples);

        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, submission, Token,
            submit: job => job.UploadAndSubmitAsync(submission, ChunkBytes));

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(expected.Losses, losses);
        Assert.Equal(expected.Parameters, (await fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync(ChunkBytes)).ToArray());
    }

    /// <summary>
    /// Runs <paramref name="spec"/> and takes its parameter server away between two batches of steps, before the batch
    /// from <paramref name="step"/> (one after a checkpoint step: a batch never crosses one), so the job must restore
    /// its checkpoint however fast its steps run.
    /// </summary>
    private async Task<(string Id, JobStatus Status, double[] Losses)> RunLosingTheParameterServerBeforeAsync(TrainingSpec spec, int step)
    {
        Assert.True(spec.CheckpointMinSeconds == 0 && (step - 1) % spec.CheckpointEvery == 0, $"no batch is sure to start at step {step}");
        var gate = fixture.Gate = CallGate.AtBatch(step);
        try
        {
            return await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token,
                afterSubmit: (_, jobId) => gate.WhileHeldAsync(() => fixture.Client.GetGrain<IParameterServerGrain>(jobId).ReleaseAsync(), Token));
        }
        finally
        {
            gate.Open();
            fixture.Gate = null;
        }
    }

    [Fact]
    public async Task AJobLargerThanOneMessage_ThatLosesItsParameterServer_RestoresItsCheckpointThroughChunks_AndEndsWithTheUndisturbedBits()
    {
        // Adam's moments triple the checkpoint: parameters and state travel and are stored in chunks.
        var spec = Spec(Parallelism.Data, workers: 1) with { Steps = 400, CheckpointEvery = 100, Optimizer = new() { Kind = Core.Optim.OptimizerKind.Adam } };
        var expected = Jobs.Local(spec);

        var (id, status, losses) = await RunLosingTheParameterServerBeforeAsync(spec, 201);

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(expected.Losses, losses);
        Assert.Equal(expected.Parameters, (await fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync(ChunkBytes)).ToArray());
        Assert.Contains(fixture.Log.Lines, l => l.StartsWith($"Job {id}: ", StringComparison.Ordinal) && l.Contains("was never initialised") && l.Contains("restoring the checkpoint"));
        // Adam's m and v are stored apart from the parameters, each a tensor as large as they are.
        await AssertStoredInChunksAsync(id, ParameterLayout.For(spec.Model).Count * sizeof(double), slots: 2);
    }

    [Theory]
    [InlineData(Precision.Float64)]
    [InlineData(Precision.Float32)]
    public async Task AShardedAdamJobLargerThanOneMessage_RestoresItsCheckpointThroughChunks_AndEndsWithTheUndisturbedBits(Precision precision)
    {
        // Three parameter-server shards, each range larger than a chunk: the gradient's ranges, the stepped
        // parameters and every shard's state (put in place chunk by chunk at each checkpoint and at the end)
        // cross silos in chunks; the parameter server is lost, so the job restores an assembled checkpoint.
        var spec = Spec(Parallelism.Data, workers: 2) with
        {
            Steps = 120, CheckpointEvery = 40, Precision = precision, ParameterServerShards = 3,
            Optimizer = new() { Kind = Core.Optim.OptimizerKind.Adam },
        };
        Assert.True(ParameterLayout.For(spec.Model).Count / 3 * precision.Size() > ChunkBytes, "each shard's range must be larger than one chunk");
        var expected = Jobs.Local(spec);

        var (id, status, losses) = await RunLosingTheParameterServerBeforeAsync(spec, 81);

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(expected.Losses, losses);
        Assert.Equal(expected.Parameters, (await fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync(ChunkBytes)).ToArray());
        Assert.Contains(fixture.Log.Lines, l => l.StartsWith($"Job {id}: ", StringComparison.Ordinal) && l.Contains("restoring the checkpoint"));
        // ShardPlacement: shard k on silo (p + 1 + k) mod 3 in address order, p the parameter server's (beside the job grain).
        var management = fixture.Client.GetGrain<IManagementGrain>(0);
#pragma warning disable xUnit1051 // the management grain's calls take no cancellation token
        var silos = (await management.GetHosts(onlyActive: true)).Keys.OrderBy(s => s.Endpoint.ToString(), StringComparer.Ordinal).ToArray();
        int server = Array.IndexOf(silos, await management.GetActivationAddress(fixture.Client.GetGrain<ITrainingJobGrain>(id)));
#pragma warning restore xUnit1051
        Assert.InRange(server, 0, 2);
        for (int k = 0; k < 3; k++)
            Assert.Contains(fixture.Log.Lines, l => l.StartsWith($"Parameter-server shard {k} of job {id}: ", StringComparison.Ordinal) && l.EndsWith($" on silo {silos[(server + 1 + k) % 3].Endpoint}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task InitialParameters_UploadedIncompletely_AreRefusedNamingInit_AndNoJobStarts()
    {
        var spec = Spec(Parallelism.Data);
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());
        var initial = TensorPayload.From(Initializer.Create(ParameterLayout.For(spec.Model), InitKind.He, seed: 5));
        foreach (var chunk in TensorChunk.Split(initial, ChunkBytes).SkipLast(1)) await job.StageAsync(UploadPart.InitialParameters, chunk);

        var error = await Assert.ThrowsAsync<JobRejectedException>(() =>
            job.SubmitAsync(Jobs.Synthetic(spec) with { StagedInitialBytes = initial.Bytes.Length }));

        Assert.Equal("init", error.Field);
        Assert.Contains($"names {initial.Bytes.Length} bytes of uploaded initial parameters, but the upload of {initial.Bytes.Length} is incomplete", error.Message);
        Assert.Equal(JobState.Unknown, (await job.GetStatusAsync()).State);
    }

    [Fact]
    public async Task AChunkOutOfOrder_IsRefusedNamingInit()
    {
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());
        await job.StageAsync(UploadPart.InitialParameters, new TensorChunk(0, 100, new byte[40]));

        var error = await Assert.ThrowsAsync<JobRejectedException>(() => job.StageAsync(UploadPart.InitialParameters, new TensorChunk(60, 100, new byte[40])));

        Assert.Equal("init", error.Field);
        Assert.Contains("bytes [60, 100) of 100 arrived where bytes from 40 of 100 were expected", error.Message);
    }

    /// <summary>
    /// The finished job's record names its final parameters in chunks, each within one chunk size,
    /// which add up to the model, and as many for each of its optimizer's <paramref name="slots"/> state
    /// slots; the checkpoints' chunks it no longer names are gone from storage.
    /// </summary>
    private async Task AssertStoredInChunksAsync(string id, long bytes, int slots = 0)
    {
        var storage = StoredStates.Storage(fixture.Cluster);
        var grain = fixture.Client.GetGrain<ITrainingJobGrain>(id).GetGrainId();
        var record = await StoredStates.ReadAsync<JobRecord>(storage, "job", grain);
        Assert.Null(record.FinalParameters);
        Assert.Null(record.FinalSlots);
        Assert.Null(record.Checkpoint);
        Assert.Null(record.StoredCheckpointSlots);
        var final = Assert.IsType<StoredTensor>(record.StoredFinalParameters);
        StoredTensor[] tensors = [final, .. record.StoredFinalSlots ?? []];
        Assert.Equal(1 + slots, tensors.Length);
        foreach (var tensor in tensors)
        {
            Assert.Equal(bytes, tensor.Bytes);
            long total = 0;
            for (int chunk = 0; chunk < tensor.Chunks; chunk++)
            {
                var stored = await StoredStates.ReadAsync<StoredChunk>(storage, StoredTensors.StateName(tensor.Slot, chunk), grain);
                Assert.InRange(stored.Bytes.Length, 1, ChunkBytes);
                total += stored.Bytes.Length;
            }
            Assert.Equal(bytes, total);
        }
        Assert.Equal(tensors.Length, tensors.Select(tensor => tensor.Slot).Distinct().Count());
        // Six checkpoints (and the initial one) were stored in chunks under lower numbers; none is left.
        int lowest = tensors.Min(tensor => tensor.Slot);
        Assert.True(lowest >= 6, $"final model state under number {lowest}");
        for (int slot = 0; slot < lowest; slot++)
        {
            var state = new GrainState<StoredChunk>(new StoredChunk());
            await storage.ReadStateAsync(StoredTensors.StateName(slot, 0), grain, state);
            Assert.False(state.RecordExists, $"checkpoint chunks under number {slot} are still stored");
        }
    }

    public sealed class SmallMessages : IAsyncLifetime
    {
        public InProcessTestCluster Cluster { get; private set; } = null!;

        public IClusterClient Client => Cluster.Client;

        // Information: the shards log where they load, which ShardPlacement decides.
        internal LogCapture Log { get; } = new(Microsoft.Extensions.Logging.LogLevel.Information);

        /// <summary>Holds the calls it picks while a test sets it (the collection's tests run one at a time).</summary>
        internal CallGate? Gate { get; set; }

        public async ValueTask InitializeAsync()
        {
            var builder = new InProcessTestClusterBuilder(3);
            builder.ConfigureSilo((_, silo) =>
            {
                silo.AddTrainer();
                silo.AddOutgoingGrainCallFilter(context => Gate is { } gate ? gate.FilterAsync(context) : context.Invoke());
                silo.Configure<SiloMessagingOptions>(o => o.MaxMessageBodySize = Limit);
                silo.Services.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(Log);
                // A short window, so the restore test's released worker misses a later window.
                silo.Services.Configure<TrainerOptions>(o => o.SplitStepBatchWindow = TimeSpan.FromMilliseconds(2));
            });
            builder.ConfigureClient(client => client.Configure<ClientMessagingOptions>(o => o.MaxMessageBodySize = Limit));
            Cluster = builder.Build();
            await Cluster.DeployAsync();
        }

        public async ValueTask DisposeAsync()
        {
            await Cluster.StopAllSilosAsync();
            await Cluster.DisposeAsync();
        }
    }
}

[CollectionDefinition(ChunkedTransferTests.Name)]
public sealed class SmallMessagesCollection : ICollectionFixture<ChunkedTransferTests.SmallMessages>;

/// <summary>
/// The tripwire for <see cref="ChunkedTransferTests"/>: in a cluster with their 256 KB limit, one
/// message larger than it never arrives (Orleans drops the connection; the call times out). Its
/// own cluster, as the dropped connection would disturb the other tests' calls.
/// </summary>
public sealed class MessageLimitTests
{
    [Fact]
    public async Task AMessageLargerThanTheLimit_NeverArrives()
    {
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer();
            silo.Configure<SiloMessagingOptions>(o => o.MaxMessageBodySize = ChunkedTransferTests.Limit);
        });
        builder.ConfigureClient(client => client.Configure<ClientMessagingOptions>(o =>
        {
            o.MaxMessageBodySize = ChunkedTransferTests.Limit;
            o.ResponseTimeout = TimeSpan.FromSeconds(3);
        }));
        await using var cluster = builder.Build();
        await cluster.DeployAsync(TestContext.Current.CancellationToken);
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());
        await job.StageAsync(UploadPart.InitialParameters, new TensorChunk(0, 2 * ChunkedTransferTests.Limit, new byte[ChunkedTransferTests.Limit / 2]));

        await Assert.ThrowsAsync<TimeoutException>(() => job.StageAsync(UploadPart.InitialParameters, 
            new TensorChunk(ChunkedTransferTests.Limit / 2, 2 * ChunkedTransferTests.Limit, new byte[ChunkedTransferTests.Limit + 1024])));
    }
}
