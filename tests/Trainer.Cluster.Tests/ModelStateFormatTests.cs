using Orleans.Runtime;
using Orleans.TestingHost;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A model state keeps each optimizer-state slot in a tensor of its own, beside the parameters, so that no
/// tensor is larger than the parameters. Records stored before that (Redis keeps them across upgrades) hold
/// the slots after the parameters in one tensor; a job grain reads them as they were meant: a finished job
/// still hands out its weights and can be resumed, and a running one resumes from its checkpoint, to the
/// bits of an undisturbed job.
/// </summary>
public sealed class ModelStateFormatTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static TrainingSpec Adam(int steps) => Jobs.Small(workers: 2, steps) with { Optimizer = new() { Kind = OptimizerKind.Adam }, CheckpointEvery = 5, CheckpointMinSeconds = 0 };

    [Fact]
    public void AModelStateInOneTensor_ComesApart_IntoTheParametersAndEachSlot()
    {
        var spec = Adam(10);
        int count = ParameterLayout.For(spec.Model).Count;
        var whole = Enumerable.Range(0, 3 * count).Select(i => i * 0.5).ToArray();

        var state = new ParameterState(spec, 10, TensorPayload.From(whole), false).WithSlotsApart();

        Assert.Equal(whole[..count], state.Parameters!.ToArray());
        Assert.Equal([whole[count..(2 * count)], whole[(2 * count)..]], state.Slots!.Select(slot => slot.ToArray()));
        // Parameters alone (a zero state, or sgd) stay as they are.
        var parameters = TensorPayload.From(whole[..count]);
        Assert.Same(parameters, new ParameterState(spec, 0, parameters, false).WithSlotsApart().Parameters);
        var error = Assert.Throws<InvalidOperationException>(() => new ParameterState(spec, 1, TensorPayload.From(whole[..(count + 1)]), false).WithSlotsApart());
        Assert.Contains($"is not a whole number of tensors of the model's {count} parameters", error.Message);
    }

    [Theory]
    [InlineData(Precision.Float64)]
    [InlineData(Precision.Float32)]
    public void AServerHandingOverItsFinalState_GivesTheValuesOfACopy_ItsOwnFloat64ParametersUncopied(Precision precision)
    {
        var spec = Adam(10) with { Precision = precision };
        int count = ParameterLayout.For(spec.Model).Count;
        // Values either precision holds exactly.
        TensorPayload Tensor(int k) => TensorPayload.From([.. Enumerable.Range(0, count).Select(i => (double)(float)(k + i * 0.25))]);
        var model = ServerModel.Create(spec, ExchangePlan.For(spec, factors: false), new ComputeScheduler(1));
        model.Load(new ModelState(Tensor(1), [Tensor(2), Tensor(3)]), 10, null);

        var copy = model.ModelState();
        var handed = model.ModelState(handOver: true);

        Assert.Equal([Tensor(1).ToArray(), Tensor(2).ToArray(), Tensor(3).ToArray()], handed.Tensors.Select(tensor => tensor.ToArray()));
        Assert.Equal(copy.Tensors.Select(tensor => tensor.ToArray()), handed.Tensors.Select(tensor => tensor.ToArray()));
        Assert.NotSame(model.Parameters, copy.Parameters);
        Assert.Equal(precision == Precision.Float64, ReferenceEquals(model.Parameters, handed.Parameters));
    }

    [Fact]
    public async Task AFinishedJobsRecordFromBeforeTheSlotsWentApart_HandsOutItsWeights_AndResumesToTheBitsOfOneLongerJob()
    {
        await using var cluster = await StartAsync();
        var spec = Adam(20);
        var (done, _, _) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token);
        var record = await RecordAsync(cluster, done);
        Assert.Equal(2, record.FinalSlots!.Length);

        // The same job as an older trainer stored it: the final model state in one tensor.
        var old = Jobs.NewId();
        record.Status = record.Status! with { JobId = old };
        record.FinalParameters = Concatenated(record.FinalParameters!, record.FinalSlots);
        record.FinalSlots = null;
        await WriteRecordAsync(cluster, old, record);

        Assert.Equal(Jobs.Local(spec).Parameters, (await cluster.Client.GetGrain<ITrainingJobGrain>(old).ReadParametersAsync()).ToArray());
        var longer = spec with { Steps = 45 };
        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(longer) with { ResumeFrom = old }, Token);
        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, Jobs.Local(longer));
    }

    [Fact]
    public async Task ARunningJobsRecordFromBeforeTheSlotsWentApart_ResumesFromItsCheckpoint_ToTheUndisturbedBits()
    {
        await using var cluster = await StartAsync();
        var spec = Adam(30);
        // A job of 10 steps ends with the state a 30-step job checkpoints after step 10.
        var (done, _, doneLosses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec with { Steps = 10 }), Token);
        var finished = await RecordAsync(cluster, done);

        // A record of the 30-step job as an older trainer left it when its silo died after step 12: its checkpoint
        // after step 10 in one tensor, and the losses up to it.
        var id = Jobs.NewId();
        var running = new JobRecord
        {
            Status = new JobStatus(id, JobState.Running, spec, 12, doneLosses[0], doneLosses[^1], null, DateTimeOffset.UtcNow, null, 1.0, "synthetic", "normal", CheckpointStep: 10),
            Losses = finished.Losses,
            LossChunkSteps = finished.LossChunkSteps,
            Checkpoint = new ParameterState(spec, 10, Concatenated(finished.FinalParameters!, finished.FinalSlots!), false),
        };
        await WriteRecordAsync(cluster, id, running);

        // Its first call activates the job grain, which resumes the job from its checkpoint.
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(id);
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        LossBatch batch;
        do
        {
            Assert.True(DateTime.UtcNow < deadline, "the resumed job did not end within 2 minutes");
            batch = await job.GetLossesAsync(1, 100_000, TimeSpan.FromSeconds(5));
        }
        while (!batch.Status.IsTerminal);

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, batch.Status, batch.Losses.Values.ToArray(), Jobs.Local(spec));
    }

    private static TensorPayload Concatenated(TensorPayload parameters, TensorPayload[] slots) =>
        TensorPayload.From([.. slots.Prepend(parameters).SelectMany(tensor => tensor.ToArray())]);

    private static async Task<InProcessTestCluster> StartAsync()
    {
        var cluster = ClusterFixture.Build(1);
        await cluster.DeployAsync(Token);
        return cluster;
    }

    private static GrainId Grain(InProcessTestCluster cluster, string id) => cluster.Client.GetGrain<ITrainingJobGrain>(id).GetGrainId();

    private static Task<JobRecord> RecordAsync(InProcessTestCluster cluster, string id) =>
        StoredStates.ReadAsync<JobRecord>(StoredStates.Storage(cluster), "job", Grain(cluster, id));

    private static Task WriteRecordAsync(InProcessTestCluster cluster, string id, JobRecord record) =>
        StoredStates.Storage(cluster).WriteStateAsync("job", Grain(cluster, id), new GrainState<JobRecord>(record));
}
