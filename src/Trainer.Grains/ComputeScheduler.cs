using System.Collections.Concurrent;

namespace Trainer.Grains;

/// <summary>
/// Dedicated threads for the numeric work of a step (GEMMs), so it never runs on the thread pool
/// that Orleans' scheduler and networking share.
/// </summary>
/// <remarks>
/// NOTE: measured on the seed job over two silo processes (2 cores): when the local worker computed
/// on the thread pool, the parameter server's request to the REMOTE worker reached it only after
/// the local computation ended (1.15 ms median from send to start, against 0.26 ms with the
/// arithmetic on its own threads); a job ran 8.1-8.4 s instead of 8.9-10.8 s. Hand-written because
/// .NET ships no dedicated-thread TaskScheduler (ConcurrentExclusiveSchedulerPair still runs on
/// the pool), and it is small.
/// </remarks>
public sealed class ComputeScheduler : TaskScheduler, IDisposable
{
    private readonly BlockingCollection<Task> _queue = new();
    private readonly Thread[] _threads;

    public ComputeScheduler(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        _threads = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            _threads[i] = new Thread(Run) { IsBackground = true, Name = $"trainer-compute-{i}" };
            _threads[i].Start();
        }
    }

    public override int MaximumConcurrencyLevel => _threads.Length;

    /// <summary>Runs <paramref name="work"/> on a compute thread.</summary>
    public Task<T> Run<T>(Func<T> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, this);

    /// <summary>Runs <paramref name="work"/> on a compute thread.</summary>
    public Task Run(Action work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, this);

    protected override void QueueTask(Task task) => _queue.Add(task);

    // Never inline: the point is to keep the arithmetic off the caller's (pool) thread.
    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;

    protected override IEnumerable<Task> GetScheduledTasks() => _queue.ToArray();

    public void Dispose() => _queue.CompleteAdding();

    private void Run()
    {
        // NOTE: not foreach over GetConsumingEnumerable: its enumerator keeps the last task (and its
        // result, a whole model's share after a checkpoint) reachable until the next task arrives.
        while (_queue.TryTake(out var task, Timeout.Infinite))
        {
            TryExecuteTask(task);
            task = null;
        }
    }
}
