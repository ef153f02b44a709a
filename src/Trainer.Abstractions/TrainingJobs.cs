using Trainer.Core.Data;

namespace Trainer.Abstractions;

/// <summary>What a client does with a job's whole-model tensors, under its message limit.</summary>
public static class TrainingJobs
{
    /// <summary>
    /// Submits <paramref name="submission"/>; initial parameters or samples larger than one chunk of
    /// <paramref name="chunkBytes"/> are uploaded first, chunk by chunk, and the submission names them.
    /// </summary>
    public static async Task<JobStatus> UploadAndSubmitAsync(this ITrainingJobGrain job, JobSubmission submission, int chunkBytes)
    {
        if (submission.InitialParameters is { } init && init.Bytes.Length > chunkBytes)
        {
            await StageAsync(job, UploadPart.InitialParameters, init, chunkBytes);
            submission = submission with { InitialParameters = null, StagedInitialBytes = init.Bytes.Length };
        }
        if (submission.Data is { } data && StagesSamples(data.X.Bytes.Length, data.Y.Bytes.Length, chunkBytes))
        {
            await StageAsync(job, UploadPart.Inputs, data.X, chunkBytes);
            await StageAsync(job, UploadPart.Targets, data.Y, chunkBytes);
            submission = submission with { Data = data.WithoutSamples(), StagedData = true };
        }
        return await job.SubmitAsync(submission);
    }

    /// <summary>Whether samples of <paramref name="inputBytes"/> and <paramref name="targetBytes"/> are uploaded in chunks ahead of the submission that names them, rather than inside it.</summary>
    public static bool StagesSamples(long inputBytes, long targetBytes, int chunkBytes) => Math.Max(inputBytes, targetBytes) > chunkBytes;

    /// <summary>
    /// Uploads <paramref name="rows"/> for a submission that names them (<see cref="JobSubmission.StagedData"/>):
    /// their inputs, then their targets, in chunks of <paramref name="chunkBytes"/>, each read from the rows as it
    /// is sent (<see cref="SampleBytes"/>), so the caller never holds the whole upload. Returns their sizes, the
    /// submission's <see cref="JobSubmission.Data"/>.
    /// </summary>
    public static async Task<DatasetPayload> StageRowsAsync(this ITrainingJobGrain job, ISampleRows rows, int chunkBytes)
    {
        foreach (var part in new[] { UploadPart.Inputs, UploadPart.Targets })
            foreach (var chunk in SampleBytes.Chunks(rows, part, chunkBytes)) await job.StageAsync(part, chunk);
        return new DatasetPayload(rows.Count, rows.InputSize, rows.OutputSize, TensorPayload.Empty, TensorPayload.Empty, InputStorage.Of(rows.InputEncoding));
    }

    private static async Task StageAsync(ITrainingJobGrain job, UploadPart part, TensorPayload tensor, int chunkBytes)
    {
        foreach (var chunk in TensorChunk.Split(tensor, chunkBytes)) await job.StageAsync(part, chunk);
    }

    /// <summary>The job's current (or final) float64 parameters, read in chunks of at most <paramref name="maxChunkBytes"/> when large.</summary>
    public static async Task<TensorPayload> ReadParametersAsync(this ITrainingJobGrain job, int maxChunkBytes = WireLimits.MaxChunkBytes) =>
        await (await job.GetParametersAsync()).ReceiveAsync(maxChunkBytes);
}
