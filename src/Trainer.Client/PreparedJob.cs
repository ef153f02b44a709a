using Trainer.Abstractions;
using Trainer.Core.Data;

namespace Trainer.Client;

/// <summary>
/// A job checked and ready to submit (<see cref="JobArguments.Prepare"/>): its submission, which carries
/// no samples, and the rows it uploads (training, validation, test), read in place from the data files
/// it holds open until it is disposed. The upload reads them a chunk at a time as it sends them
/// (<see cref="TrainingJobs.StageRowsAsync"/>), and lets the files go before the job starts: the client
/// never holds the job's samples whole, which on an embedded silo would sit beside the job grain's copy.
/// </summary>
internal sealed class PreparedJob(JobSubmission submission, ISampleRows? rows, IDisposable[] files) : IDisposable
{
    private ISampleRows? _rows = rows;
    private IDisposable[] _files = files;

    /// <summary>The submission; without the samples, which <see cref="SubmitAsync"/> uploads (or <see cref="WithSamples"/> adds).</summary>
    public JobSubmission Submission => submission;

    /// <summary>The submission with every sample in it, in one payload (a caller that submits it whole).</summary>
    public JobSubmission WithSamples() => _rows is { } all ? submission with { Data = DatasetPayload.Of(all) } : submission;

    /// <summary>Uploads the samples in chunks of <paramref name="chunkBytes"/> (inside the submission if they fit one), lets the files go, and submits the job.</summary>
    public async Task<JobStatus> SubmitAsync(ITrainingJobGrain job, int chunkBytes)
    {
        var ready = submission;
        if (_rows is { } all)
        {
            // Rows that fit one message go inside the submission, by UploadAndSubmitAsync's own rule for a whole payload.
            ready = TrainingJobs.StagesSamples(SampleBytes.Length(all, UploadPart.Inputs), SampleBytes.Length(all, UploadPart.Targets), chunkBytes)
                ? submission with { Data = await job.StageRowsAsync(all, chunkBytes), StagedData = true }
                : WithSamples();
            Dispose();
        }
        return await job.UploadAndSubmitAsync(ready, chunkBytes);
    }

    /// <summary>Lets the data files go (once); the rows read from them are gone with them.</summary>
    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
        (_files, _rows) = ([], null);
    }
}
