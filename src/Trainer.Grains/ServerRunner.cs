using System.Collections.Concurrent;
using System.Diagnostics;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// The parameter server's side of a data-parallel run over links, on a thread of its own: each step
/// it sends every worker the parameters after the step before, except that with plain SGD a worker of
/// another silo is sent that step's update (far smaller) and multiplies it out itself while the server
/// applies it to its own parameters, then reads the workers' packs
/// in rank order, adds them up the micro-shard tree and completes the step (<see cref="ServerModel"/>:
/// the same code, so the same bits, as a step through Orleans messages). Only the transport differs:
/// one socket read wakes one thread, where an Orleans round trip to a worker of another silo crosses
/// five threads each way (<see cref="WorkerLinks"/>).
/// </summary>
/// <remarks>
/// The grain hands it one window of steps at a time and touches the model only between windows
/// (checkpoints, evaluations). A window stops at the first failure with the losses of the steps it
/// completed: those steps stand (the parameters and optimizer state hold them), and the grain ends the
/// run and goes on through Orleans, whose step call re-activates a lost worker and sends it the parameters.
/// </remarks>
internal sealed class ServerRunner : IStepRun
{
    private readonly ServerModel _model;
    private readonly IBlockLink[] _links;
    private readonly string _job;
    private readonly BlockingCollection<StepWindow> _windows = new();
    private readonly Thread _thread;
    private readonly byte[] _header = new byte[ShardFrames.HeaderBytes];
    private readonly FrameBuffers[] _buffers;
    private volatile bool _broken;

    public ServerRunner(long generation, ServerModel model, IBlockLink[] links, string job)
    {
        (Generation, _model, _links, _job) = (generation, model, links, job);
        _buffers = [.. links.Select(_ => new FrameBuffers())];
        _thread = new Thread(Loop) { IsBackground = true, Name = "trainer-server" };
        _thread.Start();
    }

    public long Generation { get; }

    /// <inheritdoc/>
    public Task<WindowResult> RunAsync(int firstStep, int maxSteps, long until, Func<int, bool> endsAfter)
    {
        var window = new StepWindow(firstStep, maxSteps, until, endsAfter);
        if (_broken || !_windows.TryAdd(window)) window.Done.SetResult(new([], null, new IOException($"Job {_job}: the parameter server's run {Generation} has stopped")));
        return window.Done.Task;
    }

    /// <summary>Closes the links (the workers' runners end) and the thread.</summary>
    public void Dispose()
    {
        _broken = true;
        foreach (var link in _links) link.Dispose();
        _windows.CompleteAdding();
    }

    private void Loop()
    {
        foreach (var window in _windows.GetConsumingEnumerable())
        {
            var result = window.Run(Step);
            if (result.Failure is not null) _broken = true;
            window.Done.SetResult(result);
        }
    }

    private double Step(int step)
    {
        if (_model.CachesFollowUpdates)
        {
            // Plain SGD: workers of other silos get the update and multiply it out themselves, while the
            // server applies it to its own parameters; a worker of this silo then copies those, which
            // costs far less than multiplying the update out a second time on the same cores.
            SendRequest(step, ShardFrames.RequestKind.Update, _model.Update, local: false);
            _model.Begin(step);
            _model.ApplyPending();
            SendRequest(step, ShardFrames.RequestKind.Parameters, _model.Parameters, local: true);
        }
        else
        {
            // A run starts after a step through Orleans, so there are always parameters to send.
            SendRequest(step, ShardFrames.RequestKind.Parameters, _model.Parameters, local: null);
            _model.Begin(step);
        }
        for (int rank = 0; rank < _links.Length; rank++)
        {
            var link = _links[rank];
            var (kind, losses, error) = ShardFrames.ReadAnswer(link.Receive(step, _buffers[rank].For));
            switch (kind)
            {
                case ShardFrames.AnswerKind.NeedsParameters:
                    throw new StateLostException($"Job {_job} step {step}: worker {rank} holds no cache of the parameters after step {step - 1} (it was re-activated)");
                case ShardFrames.AnswerKind.Failed:
                    throw new WorkerStepException($"Job {_job} step {step}: worker {rank} failed: {error}");
            }
            var pack = new TensorPayload(link.Receive(step, _buffers[rank].For));
            _model.AddAsync(rank, losses, pack).AsTask().GetAwaiter().GetResult();
        }
        return _model.CompleteAsync(step).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Sends step <paramref name="step"/>'s request to the workers of this silo (<paramref name="local"/> true), of others (false), or all (null).</summary>
    private void SendRequest(int step, ShardFrames.RequestKind kind, TensorPayload payload, bool? local)
    {
        ShardFrames.WriteRequest(_header, kind);
        // Workers of other silos first: their requests cross a network and their packs come back across it, so
        // they are the step's longest path; a worker of this silo given its request first would compute on the
        // cores the transfer needs (on a machine that runs several silos) and finish early, to wait anyway.
        if (local != true) SendRequest(step, payload, toLocal: false);
        if (local != false) SendRequest(step, payload, toLocal: true);
    }

    private void SendRequest(int step, TensorPayload payload, bool toLocal)
    {
        foreach (var link in _links)
        {
            if (link is LocalPeer != toLocal) continue;
            link.Send(step, _header);
            // Shared: a worker of this silo reads the server's own buffer (the parameters, or the update's ring
            // buffer), which stays unchanged until every pack of the step is in, so it is read before it changes.
            link.SendShared(step, payload.Bytes);
        }
    }
}

/// <summary>
/// A worker's step code failed on its silo with an error no replay can fix (its log has the stack); the
/// message is the worker's "Type: message". Never retried (<see cref="Failures"/>: not an infrastructure failure).
/// </summary>
public sealed class WorkerStepException(string message) : Exception(message);
