namespace Trainer.Core.Training;

/// <summary>
/// Early stopping on the validation loss (<c>--early-stopping P</c>) after some evaluations: the
/// lowest validation loss so far (<see cref="BestLoss"/>, of the parameters after step
/// <see cref="BestStep"/>; 0: no evaluation yet) and how many evaluations since have not improved on
/// it (<see cref="Since"/>). The job stops at the <see cref="Patience"/>-th in a row, as PyTorch
/// Lightning's <c>EarlyStopping(patience=P, min_delta=0)</c> and Keras's do: only a strictly lower loss
/// improves, and a NaN never does.
/// </summary>
/// <remarks>
/// The whole state is these four numbers and the best step's parameters, which the parameter server
/// keeps beside it; a checkpoint holds both, so a restored job stops where an undisturbed one does.
/// </remarks>
public sealed record EarlyStopping(int Patience, int BestStep, double BestLoss, int Since)
{
    /// <summary>Before the first evaluation.</summary>
    public static EarlyStopping Start(int patience)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(patience);
        return new(patience, 0, double.PositiveInfinity, 0);
    }

    /// <summary>Whether <see cref="Patience"/> evaluations in a row did not improve: the job stops.</summary>
    public bool Stopped => Since >= Patience;

    /// <summary>The state after the evaluation of step <paramref name="step"/>'s parameters gave <paramref name="loss"/>.</summary>
    public EarlyStopping After(int step, double loss) =>
        loss < BestLoss ? this with { BestStep = step, BestLoss = loss, Since = 0 } : this with { Since = Since + 1 };
}
