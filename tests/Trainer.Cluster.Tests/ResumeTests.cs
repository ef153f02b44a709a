using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A job resumed to N steps in all (<see cref="JobSubmission.ResumeFrom"/>) ends with exactly the
/// losses (its whole history) and weights of one job run to N steps from the start, when the
/// learning rate does not depend on the horizon; a resumption that could not do so is refused,
/// naming the field <c>resume</c>, and starts nothing.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ResumeTests(ClusterFixture fixture)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    // A step schedule with warm-up: the rate depends on the step number, not on the horizon.
    private static OptimizerSpec Rule(OptimizerKind kind) =>
        new() { Kind = kind, WeightDecay = 1e-3, Schedule = ScheduleKind.Step, StepEvery = 9, Gamma = 0.5, WarmupSteps = 4 };

    public static TheoryData<OptimizerKind, Parallelism, Precision> Cases() => new()
    {
        { OptimizerKind.Sgd, Parallelism.Data, Precision.Float64 },
        { OptimizerKind.Adam, Parallelism.Data, Precision.Float64 },
        { OptimizerKind.Sgd, Parallelism.SplitFirstLayer, Precision.Float64 },
        { OptimizerKind.Adam, Parallelism.SplitFirstLayer, Precision.Float64 },
        { OptimizerKind.Adam, Parallelism.Data, Precision.Float32 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AResumedJob_EndsWithTheBitsOfOneLongerJob(OptimizerKind optimizer, Parallelism parallelism, Precision precision)
    {
        var spec = Jobs.Small(workers: 2, steps: 40) with { Optimizer = Rule(optimizer), Parallelism = parallelism, Precision = precision, CheckpointEvery = 10, CheckpointMinSeconds = 0 };
        var (first, firstStatus, _) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token);
        Assert.Equal(JobState.Completed, firstStatus.State);

        // The checkpoint settings may change with the step count.
        var longer = spec with { Steps = 95, CheckpointEvery = 7 };
        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(longer) with { ResumeFrom = first }, Token);

        await Jobs.AssertCompletedAsAsync(fixture.Client, id, status, losses, Jobs.Local(longer));
        Assert.Equal((first, 40), (status.ResumedFrom, status.ResumedAtStep));
        Assert.Equal(95, status.StepsCompleted);
        // The old job keeps its own result.
        Assert.Equal(Jobs.Local(spec).Parameters, (await fixture.Client.GetGrain<ITrainingJobGrain>(first).ReadParametersAsync()).ToArray());
    }

    [Fact]
    public async Task UploadedData_PassedAgain_ResumeTheJob_BitForBit()
    {
        var spec = Jobs.Small(workers: 3, steps: 20) with { Optimizer = Rule(OptimizerKind.Adam) };
        var (submission, samples) = Jobs.UploadedSamples(spec, seed: 5);
        var (first, _, _) = await Jobs.RunAsync(fixture.Client, submission, Token);

        var longer = spec with { Steps = 45 };
        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, submission with { Spec = longer, ResumeFrom = first }, Token);

        await Jobs.AssertCompletedAsAsync(fixture.Client, id, status, losses, Jobs.Local(longer, samples));
    }

    [Fact]
    public async Task AResumedJob_MayRunOnAnotherShardCount_AndEndsWithTheBitsOfOneLongerJob()
    {
        var spec = Jobs.Small(workers: 2, steps: 30) with { Optimizer = Rule(OptimizerKind.Adam), ParameterServerShards = 3, CheckpointEvery = 10, CheckpointMinSeconds = 0 };
        var (first, firstStatus, _) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token);

        // Automatic on this cluster of several silos: one shard for a model this small, a count kept with the job.
        var longer = spec with { Steps = 60, ParameterServerShards = 0 };
        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(longer) with { ResumeFrom = first }, Token);

        Assert.Equal(3, firstStatus.Spec!.ParameterServerShards);
        Assert.Equal(1, status.Spec!.ParameterServerShards);
        await Jobs.AssertCompletedAsAsync(fixture.Client, id, status, losses, Jobs.Local(longer));
    }

    public static TheoryData<string, TrainingSpec> DifferentSpecs()
    {
        var spec = Finished;
        return new()
        {
            { "the job to resume has optimizer adam; this one sgd", spec with { Optimizer = OptimizerSpec.Sgd } },
            { "the job to resume has lr 0.001; this one 0.002", spec with { LearningRate = 2e-3 } },
            { "the job to resume has workers 2; this one 3", spec with { Workers = 3 } },
            { "the job to resume has seed 7; this one 8", spec with { Seed = 8 } },
            { "the job to resume has model 20-8-3 sigmoid sse; this one 20-9-3 sigmoid sse", spec with { Model = new ModelSpec([20, 9, 3], Activation.Sigmoid, LossKind.Sse) } },
            { "the job to resume has batch 13; this one 12", spec with { Batch = 12 } },
            { "the job to resume has precision float64; this one float32", spec with { Precision = Precision.Float32 } },
            { "the job to resume has parallel data; this one split", spec with { Parallelism = Parallelism.SplitFirstLayer } },
            { "the job to resume has beta2 0.999; this one 0.99", spec with { Optimizer = spec.Optimizer with { Beta2 = 0.99 } } },
            { "the job to resume has lr-schedule step; this one cosine", spec with { Optimizer = spec.Optimizer with { Schedule = ScheduleKind.Cosine } } },
            { "job {old} stands at step 12, so --steps (the new total) must be greater than 12; it is 12", spec with { Steps = 12 } },
        };
    }

    private static TrainingSpec Finished => Jobs.Small(workers: 2, steps: 12) with { Optimizer = Rule(OptimizerKind.Adam) };

    [Theory]
    [MemberData(nameof(DifferentSpecs))]
    public async Task ASpecThatDiffers_OrNoMoreSteps_IsRefused_NamingResume(string message, TrainingSpec spec)
    {
        var (old, _, _) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(Finished), Token);

        await AssertRefusedAsync(Jobs.Synthetic(spec) with { ResumeFrom = old }, old, message.Replace("{old}", old));
    }

    [Fact]
    public async Task AnUnknownJob_ARunningJob_OrItself_IsRefused()
    {
        await AssertRefusedAsync(Jobs.Synthetic(Finished) with { ResumeFrom = "no-such-job" }, "no-such-job", "no job with id 'no-such-job' is known");

        var running = Jobs.NewId();
        await fixture.Client.GetGrain<ITrainingJobGrain>(running).SubmitAsync(Jobs.Synthetic(Finished with { Steps = TrainingSpec.MaxSteps }));
        try
        {
            await AssertRefusedAsync(Jobs.Synthetic(Finished with { Steps = TrainingSpec.MaxSteps }) with { ResumeFrom = running }, running, $"job {running} is still running");
        }
        finally
        {
            await fixture.Client.GetGrain<ITrainingJobGrain>(running).CancelAsync();
        }

        var id = Jobs.NewId();
        var error = await Assert.ThrowsAsync<JobRejectedException>(() => fixture.Client.GetGrain<ITrainingJobGrain>(id).SubmitAsync(Jobs.Synthetic(Finished) with { ResumeFrom = id }));
        Assert.Equal(("resume", id), (error.Field, error.Value));
    }

    [Fact]
    public async Task DataThatDiffer_AreRefused()
    {
        var spec = Finished;
        var (uploaded, _) = Jobs.UploadedSamples(spec, seed: 5);
        var (synthetic, _, _) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec), Token);
        var (onUploaded, _, _) = await Jobs.RunAsync(fixture.Client, uploaded, Token);
        var longer = spec with { Steps = 20 };

        await AssertRefusedAsync(uploaded with { Spec = longer, ResumeFrom = synthetic }, synthetic, $"job {synthetic} trained on synthetic data; drop --data");
        await AssertRefusedAsync(Jobs.Synthetic(longer) with { ResumeFrom = onUploaded }, onUploaded, $"job {onUploaded} trained on uploaded data; pass the same --data again");
        var (other, _) = Jobs.UploadedSamples(spec, seed: 6);
        await AssertRefusedAsync(other with { Spec = longer, ResumeFrom = onUploaded }, onUploaded, $"the uploaded data differ from those job {onUploaded} trained on");
    }

    [Fact]
    public async Task TheSameBytes_StandingForOtherValues_AreOtherData_AndRefused()
    {
        // IDX pixels travel as bytes with what each stands for (--scale): the same files with another --scale
        // upload the same bytes, and must not resume a job that trained on other values.
        var spec = Finished;
        var pixels = new byte[spec.Batch * spec.Model.InputSize];
        new Random(3).NextBytes(pixels);
        var targets = TensorPayload.From(Core.Data.Synthetic.Data(spec.Batch, 1, spec.Model.OutputSize, seed: 4).Y);
        JobSubmission Scaled(double? scale) => Jobs.Synthetic(spec) with
        {
            Data = new DatasetPayload(spec.Batch, spec.Model.InputSize, spec.Model.OutputSize, new TensorPayload(pixels), targets,
                InputStorage.Of(Core.Data.InputEncoding.Bytes(Core.Data.Idx.ByteValues(scale)))),
            DataDescription = "uploaded",
        };
        var (first, status, _) = await Jobs.RunAsync(fixture.Client, Scaled(null), Token);
        Assert.Equal(JobState.Completed, status.State);

        await AssertRefusedAsync(Scaled(0.5) with { Spec = spec with { Steps = 20 }, ResumeFrom = first }, first, $"the uploaded data differ from those job {first} trained on");
        var (_, resumed, _) = await Jobs.RunAsync(fixture.Client, Scaled(null) with { Spec = spec with { Steps = 20 }, ResumeFrom = first }, Token);
        Assert.Equal(JobState.Completed, resumed.State);
    }

    /// <summary>Refused with field resume, the old job's id and <paramref name="message"/>; no job was left behind.</summary>
    private async Task AssertRefusedAsync(JobSubmission submission, string old, string message)
    {
        var id = Jobs.NewId();
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(id);

        var error = await Assert.ThrowsAsync<JobRejectedException>(() => job.SubmitAsync(submission));

        Assert.Equal(("resume", old), (error.Field, error.Value));
        Assert.StartsWith("resume: ", error.Message);
        Assert.Contains(message, error.Message);
        Assert.Equal(JobState.Unknown, (await job.GetStatusAsync()).State);
    }
}
