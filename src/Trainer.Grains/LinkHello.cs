using System.Buffers.Binary;
using System.Text;

namespace Trainer.Grains;

/// <summary>
/// The first bytes on a worker link's connection: which link it is. 28 bytes of header (magic
/// "TRNT", version, generation, from rank, to rank, job id length), then the job id in UTF-8. The
/// accepting silo answers <see cref="TakenUp"/> once the link's worker has claimed it.
/// </summary>
internal static class LinkHello
{
    private const int Magic = 0x544E5254;   // "TRNT"
    // Version 2: the accepting side answers a hello with one byte once its worker has taken the link up.
    private const int Version = 2;
    private const int HeaderBytes = 28;
    public const int MaxJobIdBytes = 1024;
    public const byte TakenUp = 1;

    public static byte[] Encode(WorkerLinks.LinkKey key)
    {
        var job = Encoding.UTF8.GetBytes(key.Job);
        if (job.Length > MaxJobIdBytes) throw new ArgumentException($"The job id has {job.Length} UTF-8 bytes; split links allow {MaxJobIdBytes}.");
        var hello = new byte[HeaderBytes + job.Length];
        BinaryPrimitives.WriteInt32LittleEndian(hello, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(4), Version);
        BinaryPrimitives.WriteInt64LittleEndian(hello.AsSpan(8), key.Generation);
        BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(16), key.From);
        BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(20), key.To);
        BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(24), job.Length);
        job.CopyTo(hello, HeaderBytes);
        return hello;
    }

    /// <summary>Reads a hello; throws <see cref="InvalidDataException"/> for anything else, reading no more than a hello's bytes.</summary>
    public static async Task<WorkerLinks.LinkKey> ReadAsync(Stream stream, CancellationToken cancel)
    {
        var head = new byte[HeaderBytes];
        await stream.ReadExactlyAsync(head, cancel);
        int magic = BinaryPrimitives.ReadInt32LittleEndian(head), version = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(4));
        if (magic != Magic || version != Version)
            throw new InvalidDataException($"it is not a Trainer split link of version {Version} (magic 0x{magic:X8}, version {version})");
        long generation = BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(8));
        int from = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(16)), to = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(20));
        int jobBytes = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(24));
        if (jobBytes is <= 0 or > MaxJobIdBytes)
            throw new InvalidDataException($"job id length {jobBytes} is outside 1..{MaxJobIdBytes}");
        var job = new byte[jobBytes];
        await stream.ReadExactlyAsync(job, cancel);
        return new WorkerLinks.LinkKey(Encoding.UTF8.GetString(job), generation, from, to);
    }
}
