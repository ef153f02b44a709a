namespace Trainer.Abstractions;

/// <summary>
/// Orleans response timeouts of the grain calls that may carry a whole model or wait for workers,
/// one place for the top of the timeout hierarchy (docs/operations.md, "Timeouts"): a job's call to
/// its parameter server must outlast the parameter server's own retries of a worker
/// (Trainer:WorkerRetryBudget + Trainer:WorkerCallTimeout), which the silo checks at start.
/// </summary>
public static class CallTimeouts
{
    /// <summary>Calls that carry a whole model (50M parameters: 400 MB in chunks) or run steps.</summary>
    public const string Long = "00:10:00";

    /// <summary>Calls that read one worker's share or one range of rows.</summary>
    public const string Read = "00:02:00";

    public static TimeSpan LongSpan => TimeSpan.Parse(Long, System.Globalization.CultureInfo.InvariantCulture);
}
