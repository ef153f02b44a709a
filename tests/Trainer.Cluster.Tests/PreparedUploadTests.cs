using Trainer.Abstractions;
using Trainer.Client;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `trainer train` and `submit` upload the rows they read from the data files a chunk at a time
/// (<see cref="PreparedJob"/>), never holding them whole: the job must be sent exactly the bytes a
/// whole submission of the same arguments carries, and train to the same bits.
/// </summary>
[Collection(ChunkedTransferTests.Name)]
public sealed class PreparedUploadTests(ChunkedTransferTests.SmallMessages fixture)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static int ChunkBytes => WireLimits.ChunkBytesFor(ChunkedTransferTests.Limit);

    [Fact]
    public async Task RowsUploadedFromTheFiles_AChunkAtATime_AreTheWholeSubmissionsBytes_AndTrainToItsBits()
    {
        // The small Fashion-MNIST: 512 training rows less 41 held out for validation (rows picked out of the file's
        // order), then 128 test rows: 490 KB of inputs (a byte per pixel) in 64 KB chunks, whose edges cut rows of 784 bytes.
        var arguments = new JobArguments
        {
            Data = $"idx:{Cli.SmallFashionMnist}", Model = "784-16-10", Activation = "relu", Loss = "ce", Bias = true,
            LearningRate = 0.01, Batch = 64, Steps = 4, ValFraction = 0.08, Workers = 2,
        };
        var whole = arguments.ToSubmission();
        using var prepared = arguments.Prepare();
        Assert.Null(prepared.Submission.Data);
        Assert.Equal(640 * 784, whole.Data!.X.Bytes.Length);
        Assert.True(whole.Data.X.Bytes.Length > 5 * ChunkBytes, $"{whole.Data.X.Bytes.Length} bytes of inputs in chunks of {ChunkBytes}");

        var (streamedId, streamed, streamedLosses) = await Jobs.RunAsync(fixture.Client, prepared.Submission, Token,
            submit: job => prepared.SubmitAsync(job, ChunkBytes));
        var (wholeId, wholeStatus, wholeLosses) = await Jobs.RunAsync(fixture.Client, whole, Token,
            submit: job => job.UploadAndSubmitAsync(whole, ChunkBytes));

        Assert.True(streamed.State == JobState.Completed, $"{streamed.State}: {streamed.Message}");
        Assert.True(wholeStatus.State == JobState.Completed, $"{wholeStatus.State}: {wholeStatus.Message}");
        // Each job grain's SHA-256 of the samples it was sent: the same bytes.
        Assert.Equal(ResumeChecks.Checksum(whole.Data), await ChecksumAsync(streamedId));
        Assert.Equal(ResumeChecks.Checksum(whole.Data), await ChecksumAsync(wholeId));
        Assert.Equal(wholeLosses, streamedLosses);
        Assert.Equal((await ReadAsync(wholeId)).ToArray(), (await ReadAsync(streamedId)).ToArray());
    }

    private async Task<string?> ChecksumAsync(string id) => (await fixture.Client.GetGrain<ITrainingJobGrain>(id).GetResumePointAsync()).DataChecksum;

    private Task<TensorPayload> ReadAsync(string id) => fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync(ChunkBytes);
}
