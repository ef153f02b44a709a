namespace Trainer.Abstractions;

/// <summary>
/// Which strings may name a job: 1 to <see cref="MaxLength"/> characters from [A-Za-z0-9._-]
/// (the client's ids are <c>job-</c> and 12 hex digits). The job grain refuses any other id before
/// it stages, stores or starts anything, so a bad id never reaches storage, logs or the registry.
/// </summary>
public static class JobIds
{
    /// <summary>Longest job id a submission may use.</summary>
    public const int MaxLength = 128;

    public static bool IsValid(string? id) =>
        !string.IsNullOrEmpty(id) && id.Length <= MaxLength && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    /// <summary>Throws <see cref="JobRejectedException"/> naming the field <c>job</c> unless <paramref name="id"/> is valid.</summary>
    public static void Check(string? id)
    {
        if (IsValid(id)) return;
        // A refused id may be huge; the message shows its start and its length, not all of it.
        string shown = id is null ? "" : id.Length <= 40 ? id : $"{id[..40]}... ({id.Length} characters)";
        throw new JobRejectedException("job", shown,
            $"job: '{shown}' is not allowed; allowed: 1 to {MaxLength} characters from A-Z, a-z, 0-9, '.', '_' and '-', e.g. job-0123456789ab.");
    }
}
