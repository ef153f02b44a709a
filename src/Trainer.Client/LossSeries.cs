namespace Trainer.Client;

/// <summary>
/// One job's losses to plot, from a job on a cluster or a `--json` log: the training loss of each
/// step (<see cref="Steps"/>[i], <see cref="Losses"/>[i], ascending steps; NaN where the loss was
/// not finite), and the evaluations, if the job made any. <see cref="Name"/> labels it in the legend.
/// </summary>
internal sealed record LossSeries(string Name, int[] Steps, double[] Losses, IReadOnlyList<EvalPoint> Evals);

/// <summary>One evaluation: {"event":"eval","step":S,"epoch":E,"split":"test","loss":L,"accuracy":A}.</summary>
internal sealed record EvalPoint(int Step, int? Epoch, string Split, double Loss, double Accuracy);
