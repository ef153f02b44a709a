using Microsoft.Extensions.Logging;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// A data-parallel worker's side of a run over links, on a thread of its own: it reads the parameter
/// server's request for each step from its link (the update of the step before, or the parameters
/// after it), brings its cache up to date, computes its micro-shards' pack and answers it on the
/// same link, then (when it is sent updates) multiplies out its own factors for the coming one while it waits. It does
/// what <see cref="WorkerGrain"/>'s Orleans step call does, without a message through Orleans.
/// </summary>
/// <remarks>
/// The run ends when the link closes: the parameter server ended it, or a new run or an Orleans
/// step call replaced it (<see cref="StopAsync"/>). A cache that cannot be brought up to date by a
/// request is answered <see cref="ShardFrames.AnswerKind.NeedsParameters"/> (the parameter server then
/// steps through Orleans, which sends the parameters). An error in the step code is answered with its
/// "Type: message" and logged here with its stack: the parameter server fails the job with it.
/// A thread, not the silo's <see cref="ComputeScheduler"/>: it blocks in its link's reads (one wake-up
/// per request, see <see cref="WorkerLinks"/>), as a split worker's <see cref="LinkRunner"/> does.
/// </remarks>
internal sealed class ShardRunner : IShardRun
{
    private readonly ShardReplica _replica;
    private readonly IBlockLink _server;
    private readonly int _rank;
    private readonly string _job;
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly FrameBuffers _buffers = new();
    private byte[] _answer = [];
    private volatile bool _stopping;

    private readonly int _firstStep;

    /// <param name="firstStep">The step of the parameter server's first request.</param>
    public ShardRunner(long generation, int firstStep, int rank, ShardReplica replica, IBlockLink server, string job, ILogger logger)
    {
        (Generation, _firstStep, _rank, _replica, _server, _job, _logger) = (generation, firstStep, rank, replica, server, job, logger);
        // Between two batches of steps the parameter server may be busy for long (a checkpoint, scoring a test set).
        server.WaitIndefinitely();
        _thread = new Thread(Loop) { IsBackground = true, Name = $"trainer-shard-{rank}" };
        _thread.Start();
    }

    public long Generation { get; }

    /// <summary>Closes the link and waits for the thread to end (it finishes the step it is computing, if any): the cache is the grain's again.</summary>
    public Task StopAsync()
    {
        _stopping = true;
        _server.Dispose();
        return _ended.Task;
    }

    private void Loop()
    {
        int step = _firstStep;
        try
        {
            while (true)
            {
                var kind = ShardFrames.ReadRequest(_server.Receive(step, _buffers.For));
                var payload = new TensorPayload(_server.Receive(step, _buffers.For));
                bool parameters = kind == ShardFrames.RequestKind.Parameters;
                if (!_replica.CatchUp(step, parameters ? payload : null, parameters ? null : payload))
                {
                    _server.Send(step, ShardFrames.NeedsParametersAnswer());
                    return;
                }
                var (losses, pack) = _replica.Compute();
                _answer = ShardFrames.PackAnswer(losses, _answer);
                _server.Send(step, _answer);
                // Shared: the pack's buffer is one of two used in turn, and is written again only for the step
                // after next, which the server requests after it has added this one.
                _server.SendShared(step, pack.Bytes);
                // A worker sent the parameters every step (one of the server's silo) never applies an update.
                if (_replica.HasFactors && !parameters) _replica.PrecomputeOwn();
                step++;
            }
        }
        catch (Exception e) when (_stopping || Failures.Classify(e) != FailureKind.Fatal)
        {
            // The run ended (the link closed under a read): the parameter server decides what comes next.
            _logger.LogDebug(e, "Worker {Rank} of job {Job}: run {Generation} ended before step {Step}: {Error}", _rank, _job, Generation, step, e.Message);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Worker {Rank} of job {Job}: step {Step} failed with an error no replay can fix", _rank, _job, step);
            try
            {
                _server.Send(step, ShardFrames.FailedAnswer(Failures.Describe(e)));
            }
            catch (Exception unsent) when (Failures.Classify(unsent) != FailureKind.Fatal)
            {
                _logger.LogWarning("Worker {Rank} of job {Job}: the error of step {Step} could not be sent ({Error})", _rank, _job, step, unsent.Message);
            }
        }
        finally
        {
            _ended.TrySetResult();
        }
    }
}
