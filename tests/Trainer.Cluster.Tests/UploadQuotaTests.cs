using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Grains;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Uploads staged ahead of a submission are bounded before anything is allocated for them: per
/// job (Trainer:MaxUploadBytesPerJob) and per silo over all its jobs (Trainer:MaxStagedBytesPerSilo),
/// whose ids the clients choose. A refusal names the field, the size and the limit; the CLI shows it
/// with exit code 2.
/// </summary>
public sealed class UploadQuotaTests
{
    // Per silo: room for three 1 MB uploads and a small one, not four.
    private const long PerJob = 2 << 20, PerSilo = 7 << 19;
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AnUploadOverThePerJobLimit_IsRefusedAtItsFirstChunk_WithoutAllocatingWhatItClaims()
    {
        await using var cluster = await StartAsync();
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());
        long before = GC.GetTotalAllocatedBytes();

        // A first chunk of one byte that claims 2 GB are coming.
        var error = await Assert.ThrowsAsync<JobRejectedException>(() => job.StageAsync(UploadPart.Inputs, new TensorChunk(0, 2_000_000_000, new byte[1])));

        Assert.True(GC.GetTotalAllocatedBytes() - before < 100 << 20, $"{GC.GetTotalAllocatedBytes() - before} bytes were allocated");
        Assert.Equal("data", error.Field);
        Assert.Contains("2000000000 bytes of the samples' inputs", error.Message);
        Assert.Contains($"at most {PerJob} are allowed per job (Trainer:MaxUploadBytesPerJob)", error.Message);
        Assert.Equal(0, Quota(cluster).Held);
    }

    [Fact]
    public async Task TheJobsUploadsTogether_CountAgainstThePerJobLimit()
    {
        await using var cluster = await StartAsync();
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());
        await job.StageAsync(UploadPart.InitialParameters, new TensorChunk(0, 1_100_000, new byte[1000]));

        var error = await Assert.ThrowsAsync<JobRejectedException>(() => job.StageAsync(UploadPart.Inputs, new TensorChunk(0, 1_100_000, new byte[1000])));

        Assert.Contains($"with the job's other uploads that makes 2200000 bytes, and at most {PerJob} are allowed per job", error.Message);
        Assert.Equal(1_100_000, Quota(cluster).Held);
    }

    [Fact]
    public async Task UploadsForManyJobs_AreBoundedPerSilo_AndASubmissionFreesWhatItTook()
    {
        await using var cluster = await StartAsync();
        // Three jobs' inputs of 1 MB (and one's targets) fit in the silo's 3.5 MB; a fourth's inputs do not until one is submitted.
        var spec = Jobs.Small(workers: 1, steps: 5, batch: 6553) with { Model = new ModelSpec([20, 4, 1]) };
        var (submission, _) = Jobs.UploadedSamples(spec, seed: 3);
        var jobs = Enumerable.Range(0, 4).Select(_ => cluster.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId())).ToArray();
        for (int i = 0; i < 3; i++) await StageAsync(jobs[i], UploadPart.Inputs, submission.Data!.X);

        var error = await Assert.ThrowsAsync<JobRejectedException>(() => StageAsync(jobs[3], UploadPart.Inputs, submission.Data!.X));
        Assert.Contains($"this silo holds {3 * submission.Data!.X.Bytes.Length} bytes of other uploads not submitted yet, and at most {PerSilo} are allowed (Trainer:MaxStagedBytesPerSilo)", error.Message);

        await StageAsync(jobs[0], UploadPart.Targets, submission.Data.Y);
        var status = await jobs[0].SubmitAsync(submission with { Data = submission.Data.WithoutSamples(), StagedData = true });
        Assert.NotEqual(JobState.Failed, status.State);
        await StageAsync(jobs[3], UploadPart.Inputs, submission.Data.X);
        Assert.Equal(3 * submission.Data.X.Bytes.Length, Quota(cluster).Held);
    }

    [Fact]
    public async Task TheCli_ShowsARefusedUpload_WithExitCode2_NamingTheFieldAndTheLimit()
    {
        const long limit = 8 << 20;
        await using var silo = await LoopbackSilo.StartAsync(Token, o => o.MaxUploadBytesPerJob = limit);
        // 3000 x 784 float64 inputs: 18.8 MB, more than one 16 MB message, so they are staged in chunks.
        var folder = Cli.TempFolder();
        CliBadInputTests.WriteNpy(folder, "x.npy", new double[3000 * 784], 3000, 784);
        CliBadInputTests.WriteNpy(folder, "y.npy", new double[3000 * 10], 3000, 10);

        var (code, _, err) = await Cli.RunAsync("train", "--model", "784-8-10", "--data", $"npy:{folder}", "--steps", "1", "--gateway", silo.Gateway);

        Assert.Equal(2, code);
        Assert.Contains("trainer: error: data: 18816000 bytes of the samples' inputs to upload for job ", err);
        Assert.Contains($"at most {limit} are allowed per job (Trainer:MaxUploadBytesPerJob)", err);
    }

    private static async Task StageAsync(ITrainingJobGrain job, UploadPart part, TensorPayload tensor)
    {
        foreach (var chunk in TensorChunk.Split(tensor, 64 << 10)) await job.StageAsync(part, chunk);
    }

    private static StagingQuota Quota(InProcessTestCluster cluster) => cluster.Silos[0].ServiceProvider.GetRequiredService<StagingQuota>();

    private static async Task<InProcessTestCluster> StartAsync()
    {
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer();
            silo.Services.Configure<TrainerOptions>(o => (o.MaxUploadBytesPerJob, o.MaxStagedBytesPerSilo) = (PerJob, PerSilo));
        });
        var cluster = builder.Build();
        await cluster.DeployAsync(Token);
        return cluster;
    }
}
