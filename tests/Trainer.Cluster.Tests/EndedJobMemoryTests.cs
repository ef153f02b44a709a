using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// An ended job's grain stays active for the silo's collection age (30 minutes) while clients read
/// its record, so what it still references stays in the silo's memory. It must not be the samples a
/// client uploaded: only a replay reads them, and an ended job replays nothing. A silo running
/// Fashion-MNIST jobs one after another grew by their 440 MB each when it kept them.
/// </summary>
/// <remarks>
/// The silo runs in this process, so its live objects are this process's managed heap; measured alone,
/// so no other test allocates meanwhile. Kept, the samples grow it by one upload per job (6 x 48 MB:
/// 307-324 MB measured); without them it grew by 35-69 MB, the last transfers' chunks not yet let go
/// of (Orleans' buffers, grains still deactivating), however many jobs ran. The bound is half the uploads.
/// </remarks>
[Collection(Name)]
public sealed class EndedJobMemoryTests
{
    public const string Name = "ended jobs' memory, measured alone";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EndedJobs_KeepNoneOfTheirUploadedSamples_InTheSilosMemory()
    {
        var cluster = ClusterFixture.Build(1);
        await cluster.DeployAsync(Token);
        try
        {
            var spec = new TrainingSpec
            {
                Model = new ModelSpec([1000, 8, 3], Activation.Sigmoid, LossKind.Sse),
                LearningRate = 1e-3, Batch = 64, Samples = 6000, Steps = 2, Workers = 1, Seed = 7,
            };
            // 48 MB of inputs: three chunks of the default message limit's 16 MB.
            var submission = Jobs.Uploaded(spec, Core.Data.Synthetic.Data(6000, 1000, 3, seed: 3));
            long uploaded = submission.Data!.X.Bytes.Length;
            Assert.Equal(48_000_000, uploaded);

            // The first job sizes what every job reuses (pools, buffers, the JIT's code).
            await RunAsync(cluster.Client, submission);
            long before = Live();

            const int More = 6;
            for (int i = 0; i < More; i++) await RunAsync(cluster.Client, submission);

            // Kept, each job's grain would hold its own copy of the inputs: 288 MB more.
            long limit = before + More * uploaded / 2;
            long after = Live();
            Assert.True(after < limit,
                $"after {More} more ended jobs, each sent {uploaded / 1e6:F0} MB of samples, the live heap grew by {(after - before) / 1e6:F1} MB "
                + $"(from {before / 1e6:F1} to {after / 1e6:F1} MB); allowed: less than half of their samples");
        }
        finally
        {
            await cluster.StopAllSilosAsync(Token);
            await cluster.DisposeAsync();
        }
    }

    private static async Task RunAsync(IClusterClient client, JobSubmission submission)
    {
        var (_, status, _) = await Jobs.RunAsync(client, submission, Token,
            submit: job => job.UploadAndSubmitAsync(submission, WireLimits.ChunkBytesFor(WireLimits.DefaultMaxMessageBytes)));
        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
    }

    private static long Live()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}

[CollectionDefinition(EndedJobMemoryTests.Name, DisableParallelization = true)]
public sealed class EndedJobMemoryCollection;
