using System.Runtime.InteropServices;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// Two float64 buffers used in turn, each wrapped once in a payload, so a step's outgoing tensor
/// reuses the buffer of the step before last instead of allocating 800 KB on the large-object
/// heap every step.
/// </summary>
/// <remarks>
/// NOTE: this bends the [Immutable] rule on purpose and safely: a buffer sent at step s is written
/// again only at step s + 1's end or later, and the protocol is synchronous: the parameter server
/// has received (and, cross-silo, Orleans has serialized) every step-s message before anyone
/// starts writing. A straggler from a timed-out call may read a reused buffer, but its answer is
/// never used (results are matched by step).
/// </remarks>
internal sealed class PayloadRing
{
    private readonly TensorPayload[] _payloads;
    private int _current;

    public PayloadRing(int length) =>
        _payloads = [new TensorPayload(new byte[length * sizeof(double)]), new TensorPayload(new byte[length * sizeof(double)])];

    public Span<double> Current => Doubles(_current);

    public Span<double> Other => Doubles(_current ^ 1);

    public TensorPayload CurrentPayload => _payloads[_current];

    /// <summary>Makes the other buffer current.</summary>
    public void Swap() => _current ^= 1;

    /// <summary>Swaps, then returns the (new) current buffer to fill and the payload that carries it.</summary>
    public (Memory<byte> Bytes, TensorPayload Payload) Next()
    {
        Swap();
        return (_payloads[_current].Bytes, _payloads[_current]);
    }

    public static Span<double> Doubles(Memory<byte> bytes) => MemoryMarshal.Cast<byte, double>(bytes.Span);

    private Span<double> Doubles(int index) => MemoryMarshal.Cast<byte, double>(_payloads[index].Bytes.AsSpan());
}
