using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// A job's uploads in progress: initial parameters and samples too large for one message, staged
/// in chunks ahead of the submission that names them. Every size is checked against the limits
/// before anything is allocated for it (the size comes from the client): one array
/// (<see cref="WireLimits.MaxTensorBytes"/>), the job's uploads together
/// (<see cref="TrainerOptions.MaxUploadBytesPerJob"/>), and the silo's uploads for all its jobs
/// (<see cref="StagingQuota"/>). A refusal is a <see cref="JobRejectedException"/> naming the field,
/// the size and the limit, which the client shows with exit code 2.
/// </summary>
internal sealed class StagedUploads(string jobId, StagingQuota silo, long maxPerJob)
{
    private readonly Dictionary<UploadPart, TensorAssembly> _parts = [];

    /// <summary>Takes the next chunk of <paramref name="part"/>; the chunk at byte 0 starts the part over.</summary>
    public void Add(UploadPart part, TensorChunk chunk)
    {
        string field = Field(part);
        if (!Enum.IsDefined(part)) throw new JobRejectedException(field, part.ToString(), $"{field}: unknown upload part {part}; allowed: {string.Join(", ", Enum.GetNames<UploadPart>())}");
        if (chunk.Offset == 0) Start(part, chunk.TotalBytes);
        try
        {
            (_parts.GetValueOrDefault(part) ?? throw new InvalidOperationException($"A chunk at byte {chunk.Offset} arrived, but no upload started with the chunk at byte 0.")).Add(chunk);
        }
        catch (InvalidOperationException e)
        {
            Drop(part);
            throw new JobRejectedException(field, $"a chunk at byte {chunk.Offset}", $"{field}: {e.Message}");
        }
    }

    private void Start(UploadPart part, long bytes)
    {
        string field = Field(part);
        Drop(part);
        if (bytes > WireLimits.MaxTensorBytes)
            throw Refuse($"at most {WireLimits.MaxTensorBytes} are allowed (one array)");
        long job = bytes + _parts.Values.Sum(p => p.TotalBytes);
        if (job > maxPerJob)
            throw Refuse($"with the job's other uploads that makes {job} bytes, and at most {maxPerJob} are allowed per job (Trainer:MaxUploadBytesPerJob)");
        if (!silo.TryHold(bytes))
            throw Refuse($"this silo holds {silo.Held} bytes of other uploads not submitted yet, and at most {silo.Limit} are allowed (Trainer:MaxStagedBytesPerSilo); submit or retry later");
        _parts[part] = new TensorAssembly(bytes);

        JobRejectedException Refuse(string why) => new(field, $"{bytes} bytes", $"{field}: {bytes} bytes of {Describe(part)} to upload for job {jobId}; {why}");
    }

    /// <summary>The uploaded <paramref name="part"/>, which must be complete and <paramref name="bytes"/> long; the silo no longer counts it as staged.</summary>
    public TensorPayload Take(UploadPart part, long bytes)
    {
        string field = Field(part);
        var staged = _parts.GetValueOrDefault(part);
        if (staged is not { Complete: true } || staged.TotalBytes != bytes)
            throw new JobRejectedException(field, $"{bytes} uploaded bytes",
                $"{field}: the submission names {bytes} bytes of uploaded {Describe(part)}, but {(staged is null ? "none were uploaded" : staged.Complete ? $"{staged.TotalBytes} were" : $"the upload of {staged.TotalBytes} is incomplete")}");
        Drop(part);
        return staged.Take();
    }

    private void Drop(UploadPart part)
    {
        if (_parts.Remove(part, out var dropped)) silo.Release(dropped.TotalBytes);
    }

    /// <summary>Forgets every part (a submission took what it named, or the job grain goes away).</summary>
    public void Clear()
    {
        foreach (var part in _parts.Keys.ToList()) Drop(part);
    }

    // The submission's field an upload part belongs to, as errors name it.
    private static string Field(UploadPart part) => part == UploadPart.InitialParameters ? "init" : "data";

    private static string Describe(UploadPart part) => part switch
    {
        UploadPart.InitialParameters => "initial parameters",
        UploadPart.Inputs => "the samples' inputs",
        _ => "the samples' targets",
    };
}
