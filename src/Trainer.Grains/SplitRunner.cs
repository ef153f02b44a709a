using System.Collections.Concurrent;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// Runs one worker's windows of steps of a split job, for one run (generation), on a thread of its
/// own: each step it reads every other worker's activation block from its link (rank order) into
/// the step's blocks, runs the step, and sends its block for the next step on every link.
/// </summary>
/// <remarks>
/// A thread per worker, not the silo's <see cref="ComputeScheduler"/>: the thread blocks in its
/// links' reads (one wake-up per block, see <see cref="SplitLinks"/>), and a worker blocked on a
/// shared pool thread could keep another worker of its silo from computing the very block it waits
/// for. The blocks of a window's last step go out too: they are the next window's first, and wait
/// in the links. Any failure breaks the runner (the job restores its checkpoint and starts a new run).
/// </remarks>
internal sealed class SplitRunner : IDisposable
{
    private readonly int _rank;
    private readonly SplitReplica _split;
    private readonly IBlockLink?[] _links;
    private readonly byte[] _blocks;
    private readonly BlockLayout _layout;
    private readonly BlockingCollection<Window> _windows = new();
    private readonly Thread _thread;
    private volatile bool _broken;

    public SplitRunner(long generation, int rank, SplitReplica split, IBlockLink?[] links, string job)
    {
        (Generation, _rank, _split, _links) = (generation, rank, split, links);
        _layout = split.Layout;
        _blocks = new byte[_layout.TotalBytes];
        _thread = new Thread(Loop) { IsBackground = true, Name = $"trainer-split-{rank}" };
        _thread.Start();
        Job = job;
    }

    public long Generation { get; }

    public string Job { get; }

    /// <summary>Whether a window failed or the runner was aborted; it runs nothing more.</summary>
    public bool Broken => _broken;

    /// <summary>
    /// Runs <paramref name="steps"/> steps from <paramref name="firstStep"/>, loading
    /// <paramref name="parameters"/> (the parameters after firstStep - 1 steps) first when given;
    /// answers each step's loss, ending early at a non-finite one, and with <paramref name="shareAtEnd"/>
    /// this worker's share of the parameters after the window (when every step ran).
    /// </summary>
    public Task<(double[] Losses, TensorPayload? Share)> RunAsync(int firstStep, int steps, TensorPayload? parameters, bool shareAtEnd)
    {
        var window = new Window(firstStep, steps, parameters, shareAtEnd, new(TaskCreationOptions.RunContinuationsAsynchronously));
        if (_broken || !_windows.TryAdd(window))
            window.Done.SetException(new InvalidOperationException($"Job {Job}: worker {_rank}'s run {Generation} has stopped."));
        return window.Done.Task;
    }

    /// <summary>Closes the links, so a window waiting for a block fails now.</summary>
    public void Abort()
    {
        _broken = true;
        foreach (var link in _links) link?.Dispose();
    }

    public void Dispose()
    {
        Abort();
        _windows.CompleteAdding();
    }

    private void Loop()
    {
        foreach (var window in _windows.GetConsumingEnumerable())
        {
            if (_broken)
            {
                window.Done.SetException(new InvalidOperationException($"Job {Job}: worker {_rank}'s run {Generation} has stopped."));
                continue;
            }
            try
            {
                window.Done.SetResult(Run(window));
            }
            catch (Exception e)
            {
                Abort();
                window.Done.SetException(e);
            }
        }
    }

    private (double[] Losses, TensorPayload? Share) Run(Window window)
    {
        if (window.Parameters is { } parameters)
        {
            _split.Load(parameters, window.FirstStep - 1, Own);
            Send(window.FirstStep);
        }
        else if (_split.StepsApplied != window.FirstStep - 1)
            throw new InvalidOperationException($"Job {Job}: worker {_rank} stands after step {_split.StepsApplied}, not {window.FirstStep - 1}.");
        var losses = new double[window.Steps];
        int done = 0;
        for (int step = window.FirstStep; done < window.Steps; step++)
        {
            foreach (var link in _links)
                link?.Receive(step, _blocks.AsSpan(_layout.Offsets[link.Peer], _layout.Lengths[link.Peer]));
            double loss = _split.Step(_blocks, Own);
            losses[done++] = loss;
            Send(step + 1);
            if (!double.IsFinite(loss)) break;
        }
        return done == losses.Length ? (losses, window.ShareAtEnd ? _split.Share() : null) : (losses[..done], null);
    }

    /// <summary>This worker's own place in the step's blocks, where its block of each step is computed.</summary>
    private Span<byte> Own => _blocks.AsSpan(_layout.Offsets[_rank], _layout.Lengths[_rank]);

    /// <summary>Sends this worker's block of <paramref name="step"/> (in <see cref="Own"/>) to every other worker.</summary>
    private void Send(int step)
    {
        foreach (var link in _links) link?.Send(step, Own);
    }

    private sealed record Window(int FirstStep, int Steps, TensorPayload? Parameters, bool ShareAtEnd, TaskCompletionSource<(double[] Losses, TensorPayload? Share)> Done);
}
