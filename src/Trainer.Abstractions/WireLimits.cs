namespace Trainer.Abstractions;

/// <summary>
/// How large Trainer's messages and tensors may be.
/// </summary>
/// <remarks>
/// NOTE: Orleans checks its message limit (MaxMessageBodySize, default 100 MB) on send and receive,
/// and an oversized frame tears the connection down and leaves the call hanging until it times
/// out. Every tensor that may be large (parameters to the workers, a worker's share, a checkpoint,
/// the weights a client fetches or uploads, uploaded samples and each worker's rows of them)
/// therefore crosses the cluster in chunks of <see cref="ChunkBytesFor"/> (<see cref="TensorTransfer"/>),
/// and goes to storage in chunks too. A large model's per-step packs travel over the workers'
/// links, which have no message limit. So Trainer keeps Orleans' default limit on silos and clients.
/// </remarks>
public static class WireLimits
{
    /// <summary>Orleans' default MaxMessageBodySize, which Trainer's silos and clients keep.</summary>
    public const int DefaultMaxMessageBytes = 100 << 20;

    /// <summary>The largest chunk a tensor is cut into, whatever the message limit.</summary>
    public const int MaxChunkBytes = 16 << 20;

    /// <summary>
    /// The chunk size under a message limit of <paramref name="maxMessageBytes"/>: a quarter of it
    /// (room for the message's other fields and its headers), at most <see cref="MaxChunkBytes"/>, and a
    /// multiple of 8 bytes, so a chunk of a tensor holds whole values and can be put in place on its own.
    /// </summary>
    public static int ChunkBytesFor(int maxMessageBytes) => Math.Max(1024, Math.Min(MaxChunkBytes, maxMessageBytes / 4)) / 8 * 8;

    /// <summary>A tensor is assembled in one .NET byte array.</summary>
    public static long MaxTensorBytes => Array.MaxLength;
}
