using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// A data-parallel run whose workers are all on the parameter server's silo: one thread per worker, which
/// computes that worker's micro-shards on the worker's own replica (its rows, its model's buffers) at the
/// server's parameters, read in place; then the same threads add the packs up and step the parameters, each
/// taking parts of the model as they come free and stepping a part as soon as it has added it up
/// (<see cref="ServerModel.ReduceAndStepPart"/>: element-wise, so the bits of one thread doing it all). Thread 0
/// also runs the windows the grain hands it, as <see cref="ServerRunner"/>'s thread does.
/// </summary>
/// <remarks>
/// Why: within one process a frame or an Orleans message per step costs thread hand-offs on the step's
/// critical path, and the server's part of the step (adding the packs, stepping the parameters) ran on one
/// thread while the other cores waited. Here a step is two meetings of the team (<see cref="TeamBarrier"/>):
/// compute, then add up and step. Nothing is copied: no cache, no frame.
/// A worker leaves (<see cref="Seat.StopAsync"/>: its grain takes a step through Orleans, or deactivates) at
/// the end of a step; the window then ends with the steps completed, which stand, and the grain goes on through
/// Orleans, which sends the workers the parameters (their caches were forgotten when they joined). An error in
/// a worker's step code fails the window with <see cref="WorkerStepException"/> (a bug: never replayed).
/// </remarks>
internal sealed class StepTeam : IStepRun
{
    private const int Stop = -1;

    private readonly ServerModel _model;
    private readonly string _job;
    private readonly ILogger _logger;
    private readonly ShardReplica?[] _replicas;
    private readonly TensorPayload[] _packs;
    private readonly double[][] _losses;
    private readonly TeamBarrier _barrier;
    private readonly BlockingCollection<StepWindow> _windows = new();
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // What the threads do after the next meeting: compute this step, or stop.
    private volatile int _command;
    // The next part to claim (claims are Interlocked increments from -1).
    private int _stepNext = -1;
    // The step parts done (or failed) this step: the leader answers a step only once all are.
    private int _stepsDone;
    private Fault? _fault;
    private volatile string? _leaving;
    private volatile bool _broken;
    private int _started;

    public StepTeam(long generation, ServerModel model, int workers, string job, ILogger logger)
    {
        if (!model.SharesParameters)
            throw new InvalidOperationException($"Job {job}: a step team computes at the parameter server's own parameters; this server's are sharded or its exchange factored.");
        (Generation, _model, _job, _logger) = (generation, model, job, logger);
        _replicas = new ShardReplica?[workers];
        _packs = new TensorPayload[workers];
        _losses = new double[workers][];
        _barrier = new TeamBarrier(workers);
    }

    public long Generation { get; }

    /// <summary>Takes worker <paramref name="rank"/>'s replica into the team (its cache is forgotten); the seat lets the worker take it back.</summary>
    public Seat Join(int rank, ShardReplica replica)
    {
        if (rank < 0 || rank >= _replicas.Length)
            throw new ArgumentOutOfRangeException(nameof(rank), $"Job {_job}: the step team of run {Generation} has ranks 0 to {_replicas.Length - 1}, not {rank}.");
        if (Volatile.Read(ref _started) != 0 || Interlocked.CompareExchange(ref _replicas[rank], replica, null) is not null)
            throw new StateLostException($"Job {_job}: worker {rank} joins the step team of run {Generation} late or twice; its next step comes through Orleans.");
        replica.Forget();
        return new Seat(this, rank);
    }

    /// <summary>Whether every worker has joined.</summary>
    public bool Full => _replicas.All(replica => replica is not null);

    /// <summary>Starts the threads once every worker has joined.</summary>
    public void Start()
    {
        if (!Full) throw new InvalidOperationException($"Job {_job}: the step team of run {Generation} lacks workers {string.Join(", ", Enumerable.Range(0, _replicas.Length).Where(r => _replicas[r] is null))}.");
        if (Interlocked.Exchange(ref _started, 1) != 0) return;
        for (int rank = 0; rank < _replicas.Length; rank++)
        {
            int own = rank;
            new Thread(own == 0 ? Lead : () => Follow(own)) { IsBackground = true, Name = $"trainer-team-{own}" }.Start();
        }
    }

    /// <inheritdoc/>
    public Task<WindowResult> RunAsync(int firstStep, int maxSteps, long until, Func<int, bool> endsAfter)
    {
        var window = new StepWindow(firstStep, maxSteps, until, endsAfter);
        if (_broken || _leaving is not null || !TryAdd(window))
            window.Done.SetResult(new([], null, new IOException($"Job {_job}: the step team of run {Generation} has stopped{(_leaving is { } why ? $" ({why})" : "")}")));
        return window.Done.Task;
    }

    // A worker may leave (End, from its grain's turn) while the server hands over a window: adding then throws.
    private bool TryAdd(StepWindow window)
    {
        try
        {
            return _windows.TryAdd(window);
        }
        catch (InvalidOperationException) when (_windows.IsAddingCompleted)
        {
            return false;
        }
    }

    /// <summary>Ends the team at the end of the step it is computing, if any; the threads then leave.</summary>
    public void Dispose() => End("the parameter server ended the run");

    private void End(string why)
    {
        _leaving ??= why;
        _windows.CompleteAdding();
        // Never started: nobody holds a replica.
        if (Interlocked.CompareExchange(ref _started, 1, 0) == 0) _ended.TrySetResult();
    }

    private void Lead()
    {
        try
        {
            foreach (var window in _windows.GetConsumingEnumerable())
            {
                var result = _broken ? new([], null, new IOException($"Job {_job}: the step team of run {Generation} has stopped")) : window.Run(LeadStep);
                if (result.Failure is not null) _broken = true;
                window.Done.SetResult(result);
            }
        }
        finally
        {
            // The others wait at the next step's meeting: this one tells them to leave.
            _command = Stop;
            _barrier.Arrive();
            _ended.TrySetResult();
        }
    }

    private void Follow(int rank)
    {
        while (true)
        {
            _barrier.Arrive();
            int step = _command;
            if (step == Stop) return;
            Step(rank, step);
        }
    }

    /// <summary>The leader's step: it starts the step for the team, takes rank 0's part and answers the step's loss.</summary>
    private double LeadStep(int step)
    {
        if (_leaving is { } why) throw new IOException($"Job {_job}: the step team of run {Generation} stopped before step {step}: {why}");
        // The step through Orleans before the run may have left its SGD update pending.
        _model.ApplyPending();
        _model.BeginShared(step);
        _command = step;
        _barrier.Arrive();
        double loss = Step(0, step);
        if (_fault is { } fault)
        {
            _logger.LogError(fault.Error, "Worker {Rank} of job {Job}: step {Step} failed in the step team with an error no replay can fix", fault.Rank, _job, step);
            throw new WorkerStepException($"Job {_job} step {step}: worker {fault.Rank} failed: {Failures.Describe(fault.Error)}");
        }
        return loss;
    }

    /// <summary>
    /// Rank <paramref name="rank"/>'s part of step <paramref name="step"/>, from the step's first meeting to its
    /// last parts; the leader's (rank 0) answers the step's loss. Every thread sees a fault after the meeting
    /// that follows it, so all leave the step at the same point. The leader resets the claims while no thread
    /// can claim: after the first meeting (every thread has left the step before's claims to arrive there) and
    /// before the second (which none passes without it).
    /// </summary>
    private double Step(int rank, int step)
    {
        double loss = double.NaN;
        if (_fault is not null) return loss;
        if (rank == 0) (_stepNext, _stepsDone) = (-1, 0);
        try
        {
            (_losses[rank], _packs[rank]) = _replicas[rank]!.ComputeAt(step, _model.Parameters);
        }
        catch (Exception e)
        {
            Fail(rank, e);
        }
        _barrier.Arrive();
        if (_fault is not null) return loss;
        int parts = _model.SharedParts;
        try
        {
            if (rank == 0) loss = _model.AcceptShared(step, _losses);
            for (int part; (part = Interlocked.Increment(ref _stepNext)) < parts;)
            {
                try
                {
                    _model.ReduceAndStepPart(_packs, step, part);
                }
                finally
                {
                    Interlocked.Increment(ref _stepsDone);
                }
            }
        }
        catch (Exception e)
        {
            Fail(rank, e);
        }
        // The leader's loop ended with every part claimed; the parts other threads still step finish soon. It
        // waits for them: once it answers, a window may end and the grain reads the parameters at once (an
        // evaluation, a checkpoint), which must not see a part of them stepped and the rest not.
        if (rank == 0 && _fault is null)
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _stepsDone) < parts) spin.SpinOnce(sleep1Threshold: -1);
        }
        return loss;
    }

    private void Fail(int rank, Exception error) => Interlocked.CompareExchange(ref _fault, new Fault(rank, error), null);

    /// <summary>A worker's place in the team: what its grain holds while the team has its replica.</summary>
    internal sealed class Seat(StepTeam team, int rank) : IShardRun
    {
        public long Generation => team.Generation;

        /// <summary>Ends the team at the end of its current step and completes once no thread of it touches the replica.</summary>
        public Task StopAsync()
        {
            team.End($"worker {rank} left the run");
            return team._ended.Task;
        }
    }

    private sealed record Fault(int Rank, Exception Error);
}
