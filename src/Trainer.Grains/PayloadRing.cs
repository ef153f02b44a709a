using System.Runtime.InteropServices;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// Two payload buffers used in turn, so a step's outgoing tensor reuses the buffer of the step
/// before last instead of allocating 800 KB on the large-object heap every step.
/// </summary>
/// <remarks>
/// NOTE: this bends the [Immutable] rule on purpose and safely: a buffer sent at step s is written
/// again only at step s + 2, and the protocol is synchronous: the parameter server has received
/// (and, cross-silo, Orleans has serialized) every step-s message before anyone starts step s + 1.
/// A straggler from a timed-out call may read a reused buffer, but its answer is never used.
/// </remarks>
internal sealed class PayloadRing(int length)
{
    private readonly byte[][] _buffers = [new byte[length * sizeof(double)], new byte[length * sizeof(double)]];
    private int _next;

    /// <summary>The next buffer as doubles to fill, and the payload that will carry it.</summary>
    public (Memory<byte> Bytes, TensorPayload Payload) Next()
    {
        var buffer = _buffers[_next];
        _next ^= 1;
        return (buffer, new TensorPayload(buffer));
    }

    public static Span<double> Doubles(Memory<byte> bytes) => MemoryMarshal.Cast<byte, double>(bytes.Span);
}
