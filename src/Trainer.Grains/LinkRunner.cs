using System.Collections.Concurrent;
using Trainer.Abstractions;
using Trainer.Core.Memory;

namespace Trainer.Grains;

/// <summary>
/// Runs one worker's windows of steps of a split job, whose workers exchange their activation
/// blocks over links, for one run (generation), on a thread
/// of its own: each step it reads every other worker's block from its link (rank order) into the
/// step's blocks, runs the step, and sends its block for the next step on every link.
/// </summary>
/// <remarks>
/// A thread per worker, not the silo's <see cref="ComputeScheduler"/>: the thread blocks in its
/// links' reads (one wake-up per block, see <see cref="WorkerLinks"/>), and a worker blocked on a
/// shared pool thread could keep another worker of its silo from computing the very block it waits
/// for. The blocks of a window's last step go out too (but for the job's last step): they are the
/// next window's first, and wait in the links. Any failure breaks the runner: a broken link makes the
/// job restore its checkpoint and the parameter server start a new run from it; a bug in the step
/// fails the job (<see cref="Failures"/>).
/// </remarks>
internal sealed class LinkRunner : IDisposable
{
    private readonly int _rank;
    private readonly LinkedReplica _replica;
    private readonly IBlockLink?[] _links;
    private readonly byte[] _blocks;
    private readonly BlockLayout _layout;
    private readonly BlockingCollection<Window> _windows = new();
    private readonly Thread _thread;
    private volatile bool _broken;

    public LinkRunner(long generation, int rank, LinkedReplica replica, IBlockLink?[] links, string job)
    {
        (Generation, _rank, _replica, _links) = (generation, rank, replica, links);
        _layout = replica.Layout;
        _blocks = LargeArrays.New<byte>(_layout.TotalBytes);
        _thread = new Thread(Loop) { IsBackground = true, Name = $"trainer-link-{rank}" };
        _thread.Start();
        Job = job;
    }

    public long Generation { get; }

    public string Job { get; }

    /// <summary>Whether a window failed or the runner was aborted; it runs nothing more.</summary>
    public bool Broken => _broken;

    /// <summary>
    /// Runs <paramref name="steps"/> steps from <paramref name="firstStep"/>, loading
    /// <paramref name="parameters"/> (the model state after firstStep - 1 steps) first when given;
    /// answers each step's loss, ending early at a non-finite one, and with <paramref name="shareAtEnd"/>
    /// this worker's share of the parameters after the window (when every step ran). A window that
    /// fails (a link broke, the run was aborted) answers the losses of the steps it completed and
    /// why it stopped.
    /// </summary>
    public Task<WindowResult> RunAsync(int firstStep, int steps, TensorPayload? parameters, bool shareAtEnd)
    {
        var window = new Window(firstStep, steps, parameters, shareAtEnd, new(TaskCreationOptions.RunContinuationsAsynchronously));
        if (_broken || !_windows.TryAdd(window)) window.Done.SetResult(Stopped());
        return window.Done.Task;
    }

    private WindowResult Stopped() => new([], null, new OperationCanceledException($"Job {Job}: worker {_rank}'s run {Generation} has stopped"));

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
            window.Done.SetResult(_broken ? Stopped() : Run(window));
        }
    }

    private WindowResult Run(Window window)
    {
        var losses = new double[window.Steps];
        int done = 0;
        try
        {
            if (window.Parameters is { } parameters)
            {
                _replica.Load(parameters, window.FirstStep - 1, Own);
                Send(window.FirstStep);
            }
            else if (_replica.StepsApplied != window.FirstStep - 1)
                throw new InvalidOperationException($"Job {Job}: worker {_rank} stands after step {_replica.StepsApplied}, not {window.FirstStep - 1}.");
            for (int step = window.FirstStep; done < window.Steps; step++)
            {
                foreach (var link in _links)
                    link?.Receive(step, _blocks.AsSpan(_layout.Offsets[link.Peer], _layout.Lengths[link.Peer]));
                // The job's last step has no step after it: its block would be computed and sent for nothing (job 3: a whole step's arithmetic).
                bool more = step < _replica.LastStep;
                double loss = _replica.Step(_blocks, more ? Own : []);
                losses[done++] = loss;
                if (more) Send(step + 1);
                if (!double.IsFinite(loss)) break;
            }
            return done == losses.Length
                ? new WindowResult(losses, window.ShareAtEnd ? _replica.Share() : null, null)
                : new WindowResult(losses[..done], null, null);
        }
        catch (Exception e)
        {
            // Any failure breaks the run; the steps done so far stand. The whole exception goes back:
            // a bug in the step fails the job, a broken link restores its checkpoint (Failures).
            Abort();
            return new WindowResult(losses[..done], null, e);
        }
    }

    /// <summary>This worker's own place in the step's blocks, where its block of each step is computed.</summary>
    private Span<byte> Own => _blocks.AsSpan(_layout.Offsets[_rank], _layout.Lengths[_rank]);

    /// <summary>Sends this worker's block of <paramref name="step"/> (in <see cref="Own"/>) to every other worker.</summary>
    private void Send(int step)
    {
        foreach (var link in _links) link?.Send(step, Own);
        _replica.AfterSend(Own);
    }

    private sealed record Window(int FirstStep, int Steps, TensorPayload? Parameters, bool ShareAtEnd, TaskCompletionSource<WindowResult> Done);
}

/// <summary>A window's outcome: the losses of the steps it completed, the share it was asked for, and why it stopped early (null: it did not fail).</summary>
internal sealed record WindowResult(double[] Losses, TensorPayload? Share, Exception? Failure);
