using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Trainer.Grains;

namespace Trainer.Hosting;

/// <summary>
/// What one of Orleans' ports (the silo port or the gateway) holds for connections whose preamble has
/// not arrived: at most <see cref="TrainerOptions.MaxPendingInboundConnections"/> (a new one beyond is
/// closed at once), each for at most <see cref="TrainerOptions.InboundPreambleTimeout"/>. Orleans 10.4
/// has neither limit, so without them every idle connection costs the silo a file handle for as long
/// as its peer keeps it open. A connection whose preamble is in is Orleans' alone from then on.
/// </summary>
internal sealed class InboundAdmission
{
    private readonly string _port;
    private readonly TimeSpan _deadline;
    private readonly int _max;
    private readonly ThrottledWarning _expired, _refused;
    private int _pending;

    /// <param name="port">"Silo port" or "Gateway port", as the warnings name it.</param>
    public InboundAdmission(string port, TrainerOptions options, ILogger logger)
    {
        (_port, _deadline, _max) = (port, options.InboundPreambleTimeout, options.MaxPendingInboundConnections);
        _expired = new(logger, $"{port}: a connection sent no preamble within {_deadline.TotalSeconds:0.###} s (Trainer:InboundPreambleTimeout) and was closed", LinkListener.WarningPeriod);
        _refused = new(logger, $"{port}: a connection was closed at once: {_max} connections were waiting for their preamble (Trainer:MaxPendingInboundConnections)", LinkListener.WarningPeriod);
    }

    public async Task AdmitAsync(ConnectionDelegate next, ConnectionContext context)
    {
        if (Interlocked.Increment(ref _pending) > _max && _max > 0)
        {
            Interlocked.Decrement(ref _pending);
            _refused.Warn($"from {From(context)}");
            return;   // Orleans disposes the connection when its pipeline returns
        }
        var awaited = new AwaitedPreamble(() => Interlocked.Decrement(ref _pending));
        context.Features.Set(awaited);
        using var deadline = _deadline > TimeSpan.Zero ? new CancellationTokenSource(_deadline) : null;
        using var expiry = deadline?.Token.UnsafeRegister(_ =>
        {
            if (!awaited.Expire()) return;
            context.Abort(new ConnectionAbortedException($"{_port}: no preamble within {_deadline}"));
            _expired.Warn($"from {From(context)}");
        }, null);
        try
        {
            await next(context);
        }
        finally
        {
            awaited.End();
        }
    }

    private static string From(ConnectionContext context)
    {
        try { return context.RemoteEndPoint?.ToString() ?? "an unknown address"; }
        catch (ObjectDisposedException) { return "an unknown address"; }
    }
}

/// <summary>
/// A connection feature: the preamble of this connection has not arrived yet. It settles once, when
/// the preamble arrives (<see cref="PreambleWatch"/>), its deadline passes, or the connection ends,
/// whichever comes first, and only then frees its place among the port's pending connections.
/// </summary>
internal sealed class AwaitedPreamble(Action settled)
{
    private const int Waiting = 0, Received = 1, TimedOut = 2, Ended = 3;
    private int _state;

    /// <summary>Whether the connection was closed for missing its deadline (its TLS handshake then fails too, for that reason).</summary>
    public bool Expired => Volatile.Read(ref _state) == TimedOut;

    public void Arrived() => Settle(Received);

    /// <summary>Whether the deadline is what settled it (so the caller closes the connection).</summary>
    public bool Expire() => Settle(TimedOut);

    public void End() => Settle(Ended);

    private bool Settle(int state)
    {
        if (Interlocked.CompareExchange(ref _state, state, Waiting) != Waiting) return false;
        settled();
        return true;
    }
}
