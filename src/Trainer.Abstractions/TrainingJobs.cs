namespace Trainer.Abstractions;

/// <summary>What a client does with a job's whole-model tensors, under its message limit.</summary>
public static class TrainingJobs
{
    /// <summary>
    /// Submits <paramref name="submission"/>; initial parameters larger than one chunk of
    /// <paramref name="chunkBytes"/> are uploaded first, chunk by chunk, and the submission names them.
    /// </summary>
    public static async Task<JobStatus> UploadAndSubmitAsync(this ITrainingJobGrain job, JobSubmission submission, int chunkBytes)
    {
        if (submission.InitialParameters is not { } init || init.Bytes.Length <= chunkBytes) return await job.SubmitAsync(submission);
        foreach (var chunk in TensorChunk.Split(init, chunkBytes)) await job.StageInitialParametersAsync(chunk);
        return await job.SubmitAsync(submission with { InitialParameters = null, StagedInitialBytes = init.Bytes.Length });
    }

    /// <summary>The job's current (or final) float64 parameters, read in chunks of at most <paramref name="maxChunkBytes"/> when large.</summary>
    public static async Task<TensorPayload> ReadParametersAsync(this ITrainingJobGrain job, int maxChunkBytes = WireLimits.MaxChunkBytes) =>
        await (await job.GetParametersAsync()).ReceiveAsync(maxChunkBytes);
}
