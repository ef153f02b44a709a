using Orleans.Runtime;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Training;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A job whose spec draws its initial parameters (Init from Seed) never stores or sends them: its
/// first checkpoint holds none, the parameter server holds none at step 0, and every worker draws
/// its replica (or share) from the seed, in the single-process run's very bits (issue 5: a 50M
/// model's 400 MB were drawn, copied, stored and sent before its first step).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SeededStartTests(ClusterFixture fixture)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(Parallelism.Data, Precision.Float64)]
    [InlineData(Parallelism.SplitFirstLayer, Precision.Float64)]
    [InlineData(Parallelism.Data, Precision.Float32)]
    public async Task AParameterServerStartedFromTheSeed_HoldsNoParametersAtStepZero_AndItsWorkersDrawTheSingleProcessRunsBits(Parallelism parallelism, Precision precision)
    {
        var spec = Jobs.Small(workers: 2, steps: 6) with { Parallelism = parallelism, Precision = precision };
        var expected = Jobs.Local(spec);
        var server = fixture.Client.GetGrain<IParameterServerGrain>(Jobs.NewId());

        await server.InitializeAsync(new ParameterTransfer(spec, 0, null, false));
        Assert.Null((await server.GetStateAsync()).Parameters);
        var losses = new List<double>();
        while (losses.Count < spec.Steps)
            losses.AddRange((await server.RunStepsAsync(losses.Count + 1, spec.Steps - losses.Count)).Losses.Values.ToArray());
        var after = await (await server.GetStateAsync()).ReceiveAsync(WireLimits.MaxChunkBytes);
        await server.ReleaseAsync();

        Assert.Equal(expected.Losses, losses);
        Assert.Equal(spec.Steps, after.StepsCompleted);
        Assert.Equal(expected.Parameters, after.Parameters!.Values.ToArray());
    }

    [Fact]
    public async Task AParameterServer_RefusesAStateWithoutParametersPastStepZero_NamingTheStep()
    {
        var server = fixture.Client.GetGrain<IParameterServerGrain>(Jobs.NewId());

        var error = await Assert.ThrowsAnyAsync<Exception>(() => server.InitializeAsync(new ParameterTransfer(Jobs.Small(workers: 2), 5, null, false)));

        Assert.Contains("parameters after step 5 are missing; only step 0 may come without them", error.Message);
    }

    [Fact]
    public async Task AJobsFirstCheckpoint_StoresNoDrawnParameters_ButStoresUploadedOnes()
    {
        // Long jobs with checkpoints at most once an hour: the record holds the first checkpoint until they are cancelled.
        var spec = Jobs.Small(workers: 2, steps: 10_000_000) with { CheckpointEvery = 100, CheckpointMinSeconds = 3600 };
        var uploaded = Initializer.Create(ParameterLayout.For(spec.Model), InitKind.He, seed: 11);

        var drawn = await FirstCheckpointAsync(Jobs.Synthetic(spec));
        var stored = await FirstCheckpointAsync(Jobs.Synthetic(spec) with { InitialParameters = TensorPayload.From(uploaded), InitDescription = "uploaded" });

        Assert.Equal((0, true), (drawn.StepsCompleted, drawn.Parameters is null));
        Assert.Equal(0, stored.StepsCompleted);
        Assert.Equal(uploaded, stored.Parameters!.Values.ToArray());
    }

    private async Task<ParameterState> FirstCheckpointAsync(JobSubmission submission)
    {
        var id = Jobs.NewId();
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(id);
        await job.SubmitAsync(submission);
        try
        {
            var record = await StoredStates.ReadAsync<JobRecord>(StoredStates.Storage(fixture.Cluster), "job", job.GetGrainId());
            Assert.Equal(JobState.Running, record.Status?.State);
            return record.Checkpoint!;
        }
        finally
        {
            await job.CancelAsync();
        }
    }
}
