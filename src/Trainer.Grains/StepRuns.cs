namespace Trainer.Grains;

/// <summary>
/// The parameter server's side of a run: windows of steps without a message through Orleans per step, over
/// links to workers of any silo (<see cref="ServerRunner"/>) or, when every worker is on the server's silo, as
/// a team of threads computing at the server's own parameters (<see cref="StepTeam"/>). Both run the steps of
/// <see cref="ServerModel"/>, so the bits are those of a step through Orleans.
/// </summary>
internal interface IStepRun : IDisposable
{
    long Generation { get; }

    /// <summary>
    /// Runs steps from <paramref name="firstStep"/>: at least one, at most <paramref name="maxSteps"/>,
    /// and no more once <paramref name="until"/> (a <see cref="System.Diagnostics.Stopwatch"/> timestamp) has passed; ends
    /// after a non-finite loss and after a step that <paramref name="endsAfter"/> names (one the grain
    /// scores). Answers the losses of the steps completed and, if it stopped early, why.
    /// </summary>
    Task<WindowResult> RunAsync(int firstStep, int maxSteps, long until, Func<int, bool> endsAfter);
}

/// <summary>
/// A window of steps a run takes for one call from the grain (<see cref="IStepRun.RunAsync"/>): at least one,
/// at most <see cref="MaxSteps"/>, no more once <see cref="Until"/> has passed; it ends after a non-finite loss
/// and after a step that <see cref="EndsAfter"/> names.
/// </summary>
internal sealed record StepWindow(int FirstStep, int MaxSteps, long Until, Func<int, bool> EndsAfter)
{
    public TaskCompletionSource<WindowResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Takes the window's steps with <paramref name="step"/> (which answers a step's loss); an exception ends it with the steps completed before it.</summary>
    public WindowResult Run(Func<int, double> step)
    {
        var losses = new List<double>();
        try
        {
            for (int s = FirstStep; losses.Count < MaxSteps && (losses.Count == 0 || System.Diagnostics.Stopwatch.GetTimestamp() < Until); s++)
            {
                double loss = step(s);
                losses.Add(loss);
                if (!double.IsFinite(loss) || EndsAfter(s)) break;
            }
            return new([.. losses], null, null);
        }
        catch (Exception e)
        {
            return new([.. losses], null, e);
        }
    }
}

/// <summary>A worker's side of a run: what its grain holds while the run has its replica, and ends to take it back.</summary>
internal interface IShardRun
{
    long Generation { get; }

    /// <summary>Ends the worker's part in the run; completes once nothing of the run touches the worker's replica.</summary>
    Task StopAsync();
}
