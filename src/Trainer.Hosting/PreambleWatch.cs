using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace Trainer.Hosting;

/// <summary>
/// Tells <see cref="InboundAdmission"/> when an inbound connection's Orleans preamble has arrived: a
/// 4-byte little-endian length, then that many bytes (who is calling). It reads the connection's
/// plaintext, so it sits after TLS, last before Orleans (<see cref="InboundConnectionLimits"/>).
/// </summary>
internal static class PreambleWatch
{
    public static ConnectionDelegate Middleware(ConnectionDelegate next) => async context =>
    {
        if (context.Features.Get<AwaitedPreamble>() is not { } awaited)
        {
            await next(context);
            return;
        }
        var transport = context.Transport;
        context.Transport = new WatchedPipe(transport, new PreambleReader(transport.Input, awaited));
        try
        {
            await next(context);
        }
        finally
        {
            context.Transport = transport;
        }
    };

    private sealed class WatchedPipe(IDuplexPipe transport, PipeReader input) : IDuplexPipe
    {
        public PipeReader Input => input;
        public PipeWriter Output => transport.Output;
    }

    /// <summary>
    /// Passes every read through, counting the bytes until the preamble's last one is in. NOTE: Orleans
    /// consumes the length before the rest has come, so what has arrived is what was consumed plus what
    /// the latest read holds.
    /// </summary>
    private sealed class PreambleReader(PipeReader inner, AwaitedPreamble awaited) : PipeReader
    {
        private const int LengthBytes = sizeof(int);
        private bool _arrived;
        private long _consumed;
        private long? _length;
        private ReadOnlySequence<byte> _latest;

        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) =>
            Observe(await inner.ReadAsync(cancellationToken));

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result)) return false;
            Observe(result);
            return true;
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            if (!_arrived) _consumed += _latest.Slice(_latest.Start, consumed).Length;
            inner.AdvanceTo(consumed, examined);
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        private ReadResult Observe(ReadResult result)
        {
            if (_arrived) return result;
            var buffer = _latest = result.Buffer;
            if (_length is null && _consumed == 0 && buffer.Length >= LengthBytes)
            {
                Span<byte> prefix = stackalloc byte[LengthBytes];
                buffer.Slice(0, LengthBytes).CopyTo(prefix);
                _length = BinaryPrimitives.ReadInt32LittleEndian(prefix);
            }
            // A negative length counts as arrived: Orleans refuses it at once (as it does one over 1 KiB) and closes the connection.
            if (_length is { } length && (length < 0 || _consumed + buffer.Length >= LengthBytes + length))
            {
                _arrived = true;
                _latest = default;
                awaited.Arrived();
            }
            return result;
        }
    }
}
