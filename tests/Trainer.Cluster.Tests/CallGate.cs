using Trainer.Abstractions;

namespace Trainer.Cluster.Tests;

/// <summary>
/// An outgoing call filter that holds every call <paramref name="holds"/> picks until <see cref="Open"/>,
/// so a test can change the cluster at an exact point of a job, whatever the timing (<see cref="WhileHeldAsync"/>).
/// </summary>
internal sealed class CallGate(Func<IOutgoingGrainCallContext, bool> holds)
{
    private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Open() => _open.TrySetResult();

    /// <summary>
    /// Waits until a call is held, makes <paramref name="change"/> to the cluster, then lets every held call go;
    /// also when the change fails, so that the job is not left waiting for the test's deadline.
    /// </summary>
    public async Task WhileHeldAsync(Func<Task> change, CancellationToken cancellation)
    {
        try
        {
            await _reached.Task.WaitAsync(cancellation);
            await change();
        }
        finally
        {
            Open();
        }
    }

    public async Task FilterAsync(IOutgoingGrainCallContext context)
    {
        if (!_open.Task.IsCompleted && holds(context))
        {
            _reached.TrySetResult();
            await _open.Task;
        }
        await context.Invoke();
    }

    /// <summary>The parameter server's calls that would run a step from <paramref name="fromStep"/> on (a split job's window, or one data-parallel step): every step before is done.</summary>
    public static CallGate FromStep(int fromStep) => new(context =>
        (context.Request.GetArgumentCount() == 1 ? context.Request.GetArgument(0) switch
        {
            LinkedRun run => run.FirstStep,
            WorkRequest request => request.Step,
            _ => null,
        } : null) >= fromStep);

    /// <summary>The job grain's call for the batch of steps from <paramref name="step"/>: the parameter server is idle between two steps.</summary>
    public static CallGate AtBatch(int step) => new(context =>
        context.InterfaceMethod is { Name: nameof(IParameterServerGrain.RunStepsAsync) } method && method.DeclaringType == typeof(IParameterServerGrain)
        && context.Request.GetArgument(0) is int firstStep && firstStep == step);
}

/// <summary>
/// An outgoing call filter that fails the first call <paramref name="fails"/> picks with <paramref name="error"/>,
/// before it leaves its silo, as Orleans fails a call to a silo that just died. <see cref="Failed"/> says whether it has.
/// </summary>
internal sealed class CallFailure(Func<IOutgoingGrainCallContext, bool> fails, Func<Exception> error)
{
    private int _taken;

    public bool Failed => Volatile.Read(ref _taken) == 1;

    public Task FilterAsync(IOutgoingGrainCallContext context) =>
        fails(context) && Interlocked.Exchange(ref _taken, 1) == 0 ? Task.FromException(error()) : context.Invoke();

    /// <summary>The job grain's call that puts a job's start (or a checkpoint) into its parameter server.</summary>
    public static CallFailure ServerStart(Func<Exception> error) => new(context =>
        context.InterfaceMethod is { Name: nameof(IParameterServerGrain.InitializeAsync) } method && method.DeclaringType == typeof(IParameterServerGrain), error);
}

/// <summary>
/// An outgoing call filter that loses the first call <paramref name="loses"/> picks: it never reaches
/// its grain and never gets an answer, as a message lost between silos. <see cref="Lost"/> completes then.
/// </summary>
internal sealed class CallLoss(Func<IOutgoingGrainCallContext, bool> loses)
{
    private readonly TaskCompletionSource _lost = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _taken;

    public Task Lost => _lost.Task;

    public Task FilterAsync(IOutgoingGrainCallContext context)
    {
        if (loses(context) && Interlocked.Exchange(ref _taken, 1) == 0)
        {
            _lost.TrySetResult();
            return new TaskCompletionSource().Task;
        }
        return context.Invoke();
    }

    /// <summary>The parameter server's call to worker <paramref name="rank"/> for data-parallel step <paramref name="step"/>.</summary>
    public static CallLoss Step(int rank, int step) => new(context =>
        context.Request.GetArgumentCount() == 1 && context.Request.GetArgument(0) is WorkRequest request && request.Step == step
        && context.TargetId.TryGetIntegerKey(out long target, out _) && target == rank);
}
