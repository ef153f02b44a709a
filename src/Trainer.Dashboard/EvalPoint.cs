namespace Trainer.Dashboard;

/// <summary>
/// One evaluation of a job's model, as GET /api/jobs/{id} lists them in "evals":
/// <c>{"step": 500, "epoch": 2, "split": "val", "loss": 0.31, "accuracy": 0.91}</c>: after step
/// <see cref="Step"/> (in epoch <see cref="Epoch"/>), on the samples of <see cref="Split"/> ("val", the
/// validation set, or "test"), their loss (the job's: a mean for ce and mse) and the fraction classified
/// right, in [0, 1]. A job with a held-out set records one per set after every epoch and after its last
/// step; the page plots accuracy per split against step. Only evaluations after the losses in the same
/// answer are listed (the page keeps those it has read).
/// </summary>
public sealed record EvalPoint(int Step, int Epoch, string Split, double Loss, double Accuracy);
