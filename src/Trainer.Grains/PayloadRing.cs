using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Trainer.Abstractions;
using Trainer.Core.Memory;

namespace Trainer.Grains;

/// <summary>
/// Two buffers of T (double or float, the job's precision) used in turn, each wrapped once in a
/// payload, so a step's outgoing tensor reuses the buffer of the step before last instead of
/// allocating 800 KB on the large-object heap every step.
/// </summary>
/// <remarks>
/// NOTE: this bends the [Immutable] rule on purpose and safely: a buffer sent at step s (a worker's
/// pack, the parameter server's update) is written again only at step s + 2, and the protocol is
/// synchronous: every reader of a step-s message (and, cross-silo, Orleans' serializer) is done
/// with it before step s + 1 ends. A straggler from a timed-out call may read a reused buffer, but its answer is
/// never used (results are matched by step).
/// </remarks>
internal sealed class PayloadRing<T> where T : unmanaged
{
    private readonly TensorPayload[] _payloads;
    private int _current;

    public PayloadRing(int length) =>
        _payloads = [new TensorPayload(LargeArrays.New<byte>(length * Unsafe.SizeOf<T>())), new TensorPayload(LargeArrays.New<byte>(length * Unsafe.SizeOf<T>()))];

    public Span<T> Current => Values(_current);

    public Span<T> Other => Values(_current ^ 1);

    public TensorPayload CurrentPayload => _payloads[_current];

    /// <summary>Makes the other buffer current.</summary>
    public void Swap() => _current ^= 1;

    private Span<T> Values(int index) => MemoryMarshal.Cast<byte, T>(_payloads[index].Bytes.AsSpan());
}
