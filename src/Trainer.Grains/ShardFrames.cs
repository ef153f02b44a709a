using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Trainer.Core.Memory;

namespace Trainer.Grains;

/// <summary>
/// What a data-parallel run over links sends each step (<see cref="ServerRunner"/>, <see cref="ShardRunner"/>):
/// the parameter server's request to each worker is a header frame (<see cref="RequestKind"/>) and a
/// payload frame (the update of the step before, or the parameters after it); a worker's answer is a
/// header frame (<see cref="AnswerKind"/>, then its blocks' summed losses, or why it failed) and, with a
/// pack, the pack's frame. Every frame carries its step (<see cref="IBlockLink"/>), so a frame of another
/// step is refused. The payloads are the bytes of the tensors the messages plane sends in Orleans messages.
/// </summary>
internal static class ShardFrames
{
    public const int HeaderBytes = 8;

    public enum RequestKind
    {
        /// <summary>The update of the step before (plain SGD: the cache applies it).</summary>
        Update = 1,

        /// <summary>The parameters after the step before (any optimizer with state: the cache loads them).</summary>
        Parameters = 2,
    }

    public enum AnswerKind
    {
        /// <summary>The worker's blocks' losses follow in this frame, its pack in the next.</summary>
        Pack = 1,

        /// <summary>The worker's cache does not stand where the request's payload brings it up to date (it was re-activated, or stepped through Orleans since): it computed nothing.</summary>
        NeedsParameters = 2,

        /// <summary>The step's code failed on the worker with an error no replay can fix; its "Type: message" follows in UTF-8.</summary>
        Failed = 3,
    }

    public static void WriteRequest(Span<byte> header, RequestKind kind)
    {
        BinaryPrimitives.WriteInt32LittleEndian(header, (int)kind);
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], 0);
    }

    public static RequestKind ReadRequest(ReadOnlySpan<byte> header) =>
        header.Length == HeaderBytes && BinaryPrimitives.ReadInt32LittleEndian(header) is var kind && Enum.IsDefined((RequestKind)kind)
            ? (RequestKind)kind
            : throw new InvalidDataException($"A request header of {header.Length} bytes, kind {(header.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(header) : -1)}: not a request this worker knows.");

    /// <summary>The header of an answer with a pack: the kind, the count of losses, the losses.</summary>
    public static byte[] PackAnswer(ReadOnlySpan<double> losses, byte[] reuse)
    {
        int length = HeaderBytes + losses.Length * sizeof(double);
        var frame = reuse.Length == length ? reuse : LargeArrays.New<byte>(length);
        BinaryPrimitives.WriteInt32LittleEndian(frame, (int)AnswerKind.Pack);
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(4), losses.Length);
        MemoryMarshal.AsBytes(losses).CopyTo(frame.AsSpan(HeaderBytes));
        return frame;
    }

    public static byte[] NeedsParametersAnswer()
    {
        var frame = new byte[HeaderBytes];
        BinaryPrimitives.WriteInt32LittleEndian(frame, (int)AnswerKind.NeedsParameters);
        return frame;
    }

    public static byte[] FailedAnswer(string error)
    {
        var text = Encoding.UTF8.GetBytes(error);
        var frame = new byte[HeaderBytes + text.Length];
        BinaryPrimitives.WriteInt32LittleEndian(frame, (int)AnswerKind.Failed);
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(4), text.Length);
        text.CopyTo(frame.AsSpan(HeaderBytes));
        return frame;
    }

    /// <summary>An answer's kind, and its losses (a pack's) or its error (a failure's).</summary>
    public static (AnswerKind Kind, double[] Losses, string? Error) ReadAnswer(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < HeaderBytes) throw new InvalidDataException($"An answer header of {frame.Length} bytes; at least {HeaderBytes} are due.");
        var kind = (AnswerKind)BinaryPrimitives.ReadInt32LittleEndian(frame);
        int count = BinaryPrimitives.ReadInt32LittleEndian(frame[4..]);
        var body = frame[HeaderBytes..];
        return kind switch
        {
            AnswerKind.Pack when count >= 0 && body.Length == (long)count * sizeof(double) => (kind, MemoryMarshal.Cast<byte, double>(body).ToArray(), null),
            AnswerKind.NeedsParameters => (kind, [], null),
            AnswerKind.Failed when count == body.Length => (kind, [], Encoding.UTF8.GetString(body)),
            _ => throw new InvalidDataException($"An answer of kind {(int)kind} with {count} values in {body.Length} bytes: not an answer this parameter server knows."),
        };
    }
}

/// <summary>
/// Arrays to receive frames into, exactly as long as each frame (a tensor payload must be), two per
/// length used in turn: what was received at step s is written again at step s + 2 at the earliest,
/// as with <see cref="PayloadRing{T}"/>. A run has a few lengths (a batch size's and the last batch's).
/// </summary>
internal sealed class FrameBuffers
{
    private readonly Dictionary<int, (byte[] A, byte[] B, bool UseB)> _byLength = [];

    public byte[] For(int length)
    {
        if (!_byLength.TryGetValue(length, out var pair)) pair = (LargeArrays.New<byte>(length), LargeArrays.New<byte>(length), false);
        _byLength[length] = pair with { UseB = !pair.UseB };
        return pair.UseB ? pair.B : pair.A;
    }
}
