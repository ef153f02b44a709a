using Trainer.Abstractions;
using Trainer.Grains;

namespace Trainer.Client;

/// <summary>
/// `train`'s data for an embedded silo, read in place (<see cref="JobArguments.InPlace"/>): the files are opened
/// and checked here before the silo starts (bad data exits 2 at once, naming the file as typed), through the
/// <see cref="StoredFiles"/> the embedded silo is then given, so its grains find them open and checked, and
/// held until disposed. The job is sent their paths, not their rows.
/// </summary>
internal sealed class InPlaceData : IDisposable
{
    private readonly SiloJobData _held;

    private InPlaceData(JobArguments arguments, StoredFiles files, SiloJobData held, JobSubmission submission) =>
        (Arguments, Files, _held, Submission) = (arguments, files, held, submission);

    /// <summary>The arguments with the data read in place.</summary>
    public JobArguments Arguments { get; }

    /// <summary>The files, open: the embedded silo's own <see cref="StoredFiles"/>.</summary>
    public StoredFiles Files { get; }

    public JobSubmission Submission { get; }

    /// <summary>The data of <paramref name="typed"/> opened in place; null when it has none to read (synthetic data) or --data-on-silos was typed.</summary>
    public static InPlaceData? Open(JobArguments typed)
    {
        if (typed.InPlace() is not { } arguments) return null;
        var files = new StoredFiles();
        var held = SiloJobData.OpenInThisProcess(arguments.SiloDataCheck()!, arguments.ParseModel(), files);
        try
        {
            return new InPlaceData(arguments, files, held, arguments.ToSubmission(onSilos: held.Facts));
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }

    public void Dispose() => _held.Dispose();
}
