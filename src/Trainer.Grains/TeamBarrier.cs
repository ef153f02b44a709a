using System.Diagnostics;

namespace Trainer.Grains;

/// <summary>
/// A barrier for the threads of a <see cref="StepTeam"/>, which meet three times in a step of a fraction of
/// a millisecond. A thread that arrives early spins for a while (the others are on cores of their own and
/// come within microseconds) and only then sleeps, so a step pays no kernel wake-up when the team keeps
/// pace, yet a team idle between windows burns no core.
/// </summary>
/// <remarks>
/// Written by hand: <see cref="Barrier"/> spins a fixed few dozen iterations before it blocks, shorter than
/// the gap between two workers' computes, so most of a step's meetings would pay a kernel wake-up; and it has
/// no way to tell a team whose leader stopped from one whose leader is merely slow.
/// </remarks>
internal sealed class TeamBarrier(int parties)
{
    // How long an early thread spins before it sleeps: longer than the usual gap between two workers of
    // one step, far shorter than the time between two windows (a round trip through the job grain).
    private static readonly long SpinTicks = Stopwatch.Frequency / 5_000;

    private readonly object _gate = new();
    private int _arrived;
    private long _phase;
    private int _sleepers;

    public int Parties => parties;

    /// <summary>Waits until every party has arrived at this phase; the last to arrive releases the others.</summary>
    public void Arrive()
    {
        long phase = Volatile.Read(ref _phase);
        if (Interlocked.Increment(ref _arrived) == parties)
        {
            Volatile.Write(ref _arrived, 0);
            Interlocked.Increment(ref _phase);
            if (Volatile.Read(ref _sleepers) > 0)
                lock (_gate) Monitor.PulseAll(_gate);
            return;
        }
        long until = Stopwatch.GetTimestamp() + SpinTicks;
        var spin = new SpinWait();
        while (Volatile.Read(ref _phase) == phase)
        {
            if (Stopwatch.GetTimestamp() < until)
            {
                // Never Sleep(1): a millisecond asleep is several steps.
                spin.SpinOnce(sleep1Threshold: -1);
                continue;
            }
            lock (_gate)
            {
                Interlocked.Increment(ref _sleepers);
                // The releaser reads _sleepers after it moves the phase on: a sleeper counted before that read is
                // pulsed, one counted after it sees the new phase here and does not wait.
                while (Volatile.Read(ref _phase) == phase) Monitor.Wait(_gate);
                Interlocked.Decrement(ref _sleepers);
            }
        }
    }
}
