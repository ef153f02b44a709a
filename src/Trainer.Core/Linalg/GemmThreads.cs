using System.Collections.Concurrent;

namespace Trainer.Core.Linalg;

/// <summary>
/// The managed GEMM's helper threads: a GEMM cut into parts runs them on the calling thread and on
/// up to threads - 1 helpers, process-wide like OpenBLAS's own threads.
/// </summary>
/// <remarks>
/// The caller takes parts too and waits only for parts a helper has already begun: when the helpers
/// are busy with another caller's parts, it does the rest itself, so two workers that each ask for
/// helpers never wait on each other. Dedicated threads, not the thread pool: in a silo the pool runs
/// Orleans' scheduler and networking, and arithmetic there delays messages (see ComputeScheduler).
/// </remarks>
internal static class GemmThreads
{
    /// <summary>
    /// Multiply-adds below which a product runs on one thread: waking a helper costs microseconds,
    /// and below this a half-product takes only tens of them.
    /// </summary>
    public const long ParallelWork = 1 << 20;

    private static readonly BlockingCollection<PartedWork> Queue = new();
    private static readonly Lock Gate = new();
    private static int _helpers;

    /// <summary>Runs every part of <paramref name="work"/> on up to <paramref name="threads"/> threads, this one included.</summary>
    public static void Run(PartedWork work, int threads)
    {
        int helpers = Math.Min(threads, work.Parts) - 1;
        EnsureHelpers(helpers);
        for (int i = 0; i < helpers; i++) Queue.Add(work);
        work.Help();
        work.Wait();
    }

    private static void EnsureHelpers(int count)
    {
        if (Volatile.Read(ref _helpers) >= count) return;
        lock (Gate)
            for (; _helpers < count; _helpers++)
                new Thread(Help) { IsBackground = true, Name = $"trainer-gemm-{_helpers}" }.Start();
    }

    private static void Help()
    {
        // NOTE: TryTake, not foreach over GetConsumingEnumerable, whose enumerator keeps the last work
        // (and the matrices it points into) reachable until the next arrives.
        while (Queue.TryTake(out var work, Timeout.Infinite))
        {
            work.Help();
            work = null;
        }
    }
}

/// <summary>Work of a known number of independent parts, taken in turn by whichever threads help.</summary>
internal abstract class PartedWork(int parts)
{
    private readonly ManualResetEventSlim _done = new();
    private int _next = -1, _left = parts;
    private Exception? _failure;

    public int Parts { get; } = parts;

    protected abstract void RunPart(int part);

    /// <summary>Runs parts until none is left to take.</summary>
    public void Help()
    {
        int part;
        while ((part = Interlocked.Increment(ref _next)) < Parts)
        {
            try { RunPart(part); }
            catch (Exception e) { Interlocked.CompareExchange(ref _failure, e, null); }
            if (Interlocked.Decrement(ref _left) == 0) _done.Set();
        }
    }

    /// <summary>Waits for the parts other threads took; rethrows the first failure.</summary>
    public void Wait()
    {
        _done.Wait();
        if (_failure is { } failure) throw new AggregateException("A part of a parallel GEMM failed.", failure);
    }
}
