using Microsoft.Extensions.Logging;

namespace Trainer.Grains;

/// <summary>
/// Gives the memory jobs used back to the operating system once none runs in this process: when the last
/// grain that holds a job's model or rows here (a worker, the parameter server, a shard) deactivates and
/// no other activates for <see cref="TrainerOptions.IdleCollectionDelay"/>, one aggressive full
/// collection compacts the heap and decommits its free space.
/// </summary>
/// <remarks>
/// NOTE: without it a silo kept what its largest job had needed: the GC collects only when something
/// allocates, and an idle silo allocates little, so the free space of a job's arrays stayed committed
/// (docs/performance.md, "After the job"). Only when idle, since a compacting collection of a busy heap
/// pauses every job on the silo. One counter per process (<see cref="ForProcess"/>), not per silo: a
/// collection is the whole process's, and test clusters run several silos in one process.
/// </remarks>
public sealed class IdleMemory
{
    private static IdleMemory? s_process;

    private readonly TimeSpan _delay;
    private readonly TimeProvider _time;
    private readonly Action _collect;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private int _active;
    // Bumped by every activation: a collection scheduled before one never runs.
    private long _generation;
    private ITimer? _timer;

    /// <summary>The process's one counter, made by the first silo that asks, with its delay.</summary>
    public static IdleMemory ForProcess(TimeSpan delay, ILogger logger) =>
        LazyInitializer.EnsureInitialized(ref s_process, () => new IdleMemory(delay, TimeProvider.System, Collect, logger));

    public IdleMemory(TimeSpan delay, TimeProvider time, Action collect, ILogger logger) =>
        (_delay, _time, _collect, _logger) = (delay, time, collect, logger);

    /// <summary>A grain that holds a job's model or rows activated here.</summary>
    public void Enter()
    {
        lock (_lock)
        {
            _active++;
            _generation++;
            _timer?.Dispose();
            _timer = null;
        }
    }

    /// <summary>It deactivated: when it was the last, a collection follows the delay unless another activates first.</summary>
    public void Exit()
    {
        lock (_lock)
        {
            if (--_active > 0 || _delay <= TimeSpan.Zero) return;
            long generation = _generation;
            _timer?.Dispose();
            _timer = _time.CreateTimer(_ => CollectIfIdle(generation), null, _delay, Timeout.InfiniteTimeSpan);
        }
    }

    private void CollectIfIdle(long generation)
    {
        lock (_lock)
        {
            if (_active > 0 || generation != _generation) return;
            _timer?.Dispose();
            _timer = null;
        }
        long before = Environment.WorkingSet;
        _collect();
        try
        {
            _logger.LogInformation("No job runs in this process: a full collection gave its free memory back (resident {Before} MB -> {After} MB)",
                before >> 20, Environment.WorkingSet >> 20);
        }
        catch (ObjectDisposedException)
        {
            // The logger is the first silo's of the process, which may have stopped while others run on (test clusters);
            // an exception out of a timer's callback would end the process.
        }
    }

    // Aggressive: compacts every generation, the large-object heap included, and decommits what is free.
    private static void Collect() => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
}
