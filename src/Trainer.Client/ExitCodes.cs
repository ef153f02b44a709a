using Trainer.Abstractions;

namespace Trainer.Client;

/// <summary>Process exit codes, documented in the README.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Error = 1;
    public const int BadInput = 2;
    public const int Diverged = 3;
    public const int Failed = 4;
    public const int Cancelled = 5;
    public const int Interrupted = 130;

    public static int For(JobState state) => state switch
    {
        JobState.Completed => Success,
        JobState.Diverged => Diverged,
        JobState.Cancelled => Cancelled,
        JobState.Unknown => BadInput,
        _ => Failed,
    };
}
