namespace Trainer.Abstractions;

/// <summary>
/// The largest message Trainer's silos and clients accept (Orleans' MaxMessageBodySize on both ends).
/// </summary>
/// <remarks>
/// NOTE: Orleans' default is 100 MB, and an oversized frame tears the connection down and leaves
/// the call hanging until it times out. Per step only updates and gradient packs travel, but a
/// worker's first parameters, a replica read for a checkpoint, the checkpoint write and a client
/// fetching the weights each carry the whole parameter buffer once: a 50M-parameter model is
/// 400 MB. So the limit is raised to 1 GiB and a job whose parameters would not fit is rejected
/// at submission, naming the model, instead of hanging later.
/// </remarks>
public static class WireLimits
{
    public const int MaxMessageBytes = 1 << 30;

    /// <summary>Room left in a message for everything that is not the parameters.</summary>
    public const int Headroom = 16 << 20;

    /// <summary>Most parameters a job may have: its float64 parameter buffer must fit one message.</summary>
    public const long MaxParameters = (MaxMessageBytes - Headroom) / sizeof(double);
}
