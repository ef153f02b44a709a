using Trainer.Abstractions;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>The grain checks submissions itself (a client may skip its own checks) and starts nothing on refusal.</summary>
[Collection(ClusterCollection.Name)]
public sealed class RejectionTests(ClusterFixture fixture)
{
    public static TheoryData<string, TrainingSpec> BadSpecs => new()
    {
        { "workers", Jobs.Small(workers: 14) },
        { "lr", Jobs.Small(2) with { LearningRate = double.NaN } },
        { "lr", Jobs.Small(2) with { LearningRate = -1 } },
        { "steps", Jobs.Small(2) with { Steps = 0 } },
        { "batch", Jobs.Small(1) with { Batch = 0 } },
        // 300M parameters: 2.4 GB as float64, more than one array may hold.
        { "model", Jobs.Small(2) with { Model = new Trainer.Core.Models.ModelSpec([30000, 10000, 10]) } },
        // 268,453,422 parameters with adam: the parameters alone are one array too many (its m and v are arrays of their own).
        { "model", Jobs.Small(2) with { Model = new Trainer.Core.Models.ModelSpec([20000, 13422, 1]), Optimizer = new() { Kind = Trainer.Core.Optim.OptimizerKind.Adam } } },
        // 200M parameters with adam on 2 shards: a shard loads its 100M and their m and v in one array (2.4 GB).
        { "ps-shards", Jobs.Small(2) with { Model = new Trainer.Core.Models.ModelSpec([20000, 10000, 1]), Optimizer = new() { Kind = Trainer.Core.Optim.OptimizerKind.Adam }, ParameterServerShards = 2 } },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public async Task BadSpec_IsRejectedNamingTheField_AndLeavesNoJobBehind(string field, TrainingSpec spec)
    {
        var id = Jobs.NewId();
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(id);

        var error = await Assert.ThrowsAsync<JobRejectedException>(() => job.SubmitAsync(Jobs.Synthetic(spec)));

        Assert.Equal(field, error.Field);
        Assert.StartsWith($"{field}: ", error.Message);
        Assert.Equal(JobState.Unknown, (await job.GetStatusAsync()).State);
        Assert.DoesNotContain(id, await fixture.Client.GetGrain<IJobRegistryGrain>(0).ListAsync());
    }

    [Fact]
    public async Task UploadedData_ThatDoesNotFitTheModel_IsRejected()
    {
        var spec = Jobs.Small(2);
        var data = new DatasetPayload(spec.Batch, 5, 3, TensorPayload.From(new double[spec.Batch * 5]), TensorPayload.From(new double[spec.Batch * 3]));
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());

        var error = await Assert.ThrowsAsync<JobRejectedException>(() => job.SubmitAsync(new JobSubmission(spec, data, null, "test", "test")));

        Assert.Equal("data", error.Field);
        Assert.Contains("takes 20", error.Message);
    }

    public static TheoryData<int, double?, string> BadStorages => new()
    {
        { 2, null, "input storage 2" },            // int64: not a way inputs travel
        { 1, 0.5, "input storage 1 with byte values" },
        { 4, null, "input storage 4" },            // bytes without what each stands for
        { 4, double.NaN, "every byte must stand for a finite value" },
    };

    [Theory]
    [MemberData(nameof(BadStorages))]
    public async Task UploadedData_HeldInAStorageNoReaderKnows_IsRejectedNamingWhatIsAllowed(int type, double? byteValue, string says)
    {
        var spec = Jobs.Small(2);
        var table = byteValue is { } value ? TensorPayload.From(Enumerable.Repeat(value, 256).ToArray()) : null;
        var data = new DatasetPayload(spec.Batch, 20, 3, TensorPayload.From(new double[spec.Batch * 20]), TensorPayload.From(new double[spec.Batch * 3]), new InputStorage(type, table));
        var id = Jobs.NewId();
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(id);

        var error = await Assert.ThrowsAsync<JobRejectedException>(() => job.SubmitAsync(new JobSubmission(spec, data, null, "test", "test")));

        Assert.Equal("data", error.Field);
        Assert.Contains(says, error.Message);
        Assert.Contains("float64 (0), float32 (1) or uint8 (4)", error.Message);
        Assert.Equal(JobState.Unknown, (await job.GetStatusAsync()).State);
    }

    [Fact]
    public async Task ReusedJobId_IsRejected_AndTheFirstJobIsUntouched()
    {
        var spec = Jobs.Small(1, steps: 3);
        var (id, first, _) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), TestContext.Current.CancellationToken);
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(id);

        var error = await Assert.ThrowsAsync<JobRejectedException>(() => job.SubmitAsync(Jobs.Synthetic(spec)));

        Assert.Equal("job", error.Field);
        Assert.Equal(first, await job.GetStatusAsync());
    }

    public static TheoryData<string> BadIds => new()
    {
        "test-" + new string('a', JobIds.MaxLength - 4),
        "test-" + new string('x', 1020),
        "test-with space",
        "test/../etc",
        "test-é",
    };

    [Theory]
    [MemberData(nameof(BadIds))]
    public async Task BadJobId_IsRejectedAtSubmission_AndNoJobIsRegistered(string id)
    {
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(id);

        var error = await Assert.ThrowsAsync<JobRejectedException>(() => job.SubmitAsync(Jobs.Synthetic(Jobs.Small(1, steps: 3))));

        Assert.Equal("job", error.Field);
        Assert.StartsWith("job: '", error.Message);
        Assert.Contains($"allowed: 1 to {JobIds.MaxLength} characters from A-Z, a-z, 0-9, '.', '_' and '-'", error.Message);
        Assert.Equal(JobState.Unknown, (await job.GetStatusAsync()).State);
        Assert.DoesNotContain(id, await fixture.Client.GetGrain<IJobRegistryGrain>(0).ListAsync());
    }

    [Fact]
    public async Task BadJobId_IsRejectedBeforeAnUploadIsStaged()
    {
        var job = fixture.Client.GetGrain<ITrainingJobGrain>("test-" + new string('x', 200));

        var error = await Assert.ThrowsAsync<JobRejectedException>(() => job.StageAsync(UploadPart.InitialParameters, new TensorChunk(0, 8, new byte[8])));

        Assert.Equal("job", error.Field);
        Assert.Contains("(205 characters)", error.Message);
    }

    [Fact]
    public async Task JobId_OfExactlyTheMaximumLength_IsAccepted()
    {
        var id = "test-" + new string('a', JobIds.MaxLength - 5);
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(id);

        await job.SubmitAsync(Jobs.Synthetic(Jobs.Small(1, steps: 1)));

        Assert.Contains(id, await fixture.Client.GetGrain<IJobRegistryGrain>(0).ListAsync());
    }
}
