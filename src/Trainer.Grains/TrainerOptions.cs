namespace Trainer.Grains;

/// <summary>
/// Cluster-side knobs for running jobs, bound from configuration section "Trainer"
/// (appsettings.json, environment variables Trainer__StepRetries=..., or the command line).
/// </summary>
public sealed class TrainerOptions
{
    public const string Section = "Trainer";

    /// <summary>How often a worker call is retried after a silo failure before the job fails.</summary>
    public int StepRetries { get; set; } = 5;

    /// <summary>First back-off between retries; doubles each time.</summary>
    public TimeSpan RetryBackoff { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>How long one worker may take for one shard step before the call is retried.</summary>
    public TimeSpan WorkerCallTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>OpenBLAS threads per silo process; 0 leaves OpenBLAS's own default.</summary>
    public int BlasThreads { get; set; }
}
