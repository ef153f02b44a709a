namespace Trainer.Abstractions;

/// <summary>
/// How large Trainer's messages and tensors may be.
/// </summary>
/// <remarks>
/// NOTE: Orleans checks its message limit (MaxMessageBodySize, default 100 MB) on send and receive,
/// and an oversized frame tears the connection down and leaves the call hanging until it times
/// out. A tensor that may be as large as the model (parameters to the workers, a worker's share, a
/// checkpoint, the weights a client fetches or uploads) therefore crosses the cluster in chunks of
/// <see cref="ChunkBytesFor"/> (<see cref="TensorTransfer"/>), and a checkpoint goes to storage in
/// chunks too. The per-step packs of a large model travel over the workers' links, which have no
/// message limit. Only uploaded data still travels whole, so the limit stays raised to
/// <see cref="MaxMessageBytes"/> on both ends.
/// </remarks>
public static class WireLimits
{
    public const int MaxMessageBytes = 1 << 30;

    /// <summary>The largest chunk a tensor is cut into, whatever the message limit.</summary>
    public const int MaxChunkBytes = 16 << 20;

    /// <summary>
    /// The chunk size under a message limit of <paramref name="maxMessageBytes"/>: a quarter of it
    /// (room for the message's other fields and its headers), at most <see cref="MaxChunkBytes"/>.
    /// </summary>
    public static int ChunkBytesFor(int maxMessageBytes) => Math.Max(1024, Math.Min(MaxChunkBytes, maxMessageBytes / 4));

    /// <summary>A tensor is assembled in one .NET byte array.</summary>
    public static long MaxTensorBytes => Array.MaxLength;

    /// <summary>Most parameters a job may have: its float64 parameter buffer must fit one array (<see cref="MaxTensorBytes"/>).</summary>
    public static long MaxParameters => MaxTensorBytes / sizeof(double);
}
