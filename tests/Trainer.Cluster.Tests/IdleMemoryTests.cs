using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A silo's process gives its free memory back with one full collection once no grain holding a job's
/// model or rows has been active in it for the delay, and never while one is: a compacting collection
/// of a busy heap would pause the jobs running there.
/// </summary>
public sealed class IdleMemoryTests
{
    private static readonly TimeSpan Delay = TimeSpan.FromSeconds(5);

    private readonly FakeTimeProvider _time = new();
    private int _collections;

    private IdleMemory Idle(TimeSpan? delay = null) => new(delay ?? Delay, _time, () => _collections++, NullLogger.Instance);

    [Fact]
    public void TheLastGrainGone_CollectsOnceTheDelayHasPassed_AndOnlyOnce()
    {
        var idle = Idle();
        idle.Enter();
        idle.Enter();
        idle.Exit();
        _time.Advance(Delay * 3);
        Assert.Equal(0, _collections);

        idle.Exit();
        _time.Advance(Delay - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, _collections);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, _collections);

        _time.Advance(Delay * 10);
        Assert.Equal(1, _collections);
    }

    [Fact]
    public void AGrainActivatingWithinTheDelay_CancelsTheCollection_UntilItTooIsGone()
    {
        var idle = Idle();
        idle.Enter();
        idle.Exit();
        _time.Advance(Delay / 2);
        idle.Enter();
        _time.Advance(Delay * 3);
        Assert.Equal(0, _collections);

        idle.Exit();
        _time.Advance(Delay);
        Assert.Equal(1, _collections);
    }

    [Fact]
    public void EveryIdleSpell_CollectsOnce()
    {
        var idle = Idle();
        for (int job = 1; job <= 3; job++)
        {
            idle.Enter();
            idle.Exit();
            _time.Advance(Delay);
            Assert.Equal(job, _collections);
        }
    }

    [Fact]
    public void AZeroDelay_NeverCollects()
    {
        var idle = Idle(TimeSpan.Zero);
        idle.Enter();
        idle.Exit();
        _time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, _collections);
    }
}
