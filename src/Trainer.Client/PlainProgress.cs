using System.Diagnostics;
using System.Globalization;
using Trainer.Abstractions;

namespace Trainer.Client;

/// <summary>Like the tutorial: the first and last step, about ten lines in between, and every non-finite loss.</summary>
/// <param name="live">
/// A job already running (`watch`): also a line at once for the first step seen and then whenever
/// <see cref="LiveEvery"/> has passed since the last line, so a long job shows where it is within a
/// second. `train` keeps the ~10 lines.
/// </param>
internal sealed class PlainProgress(TextWriter output, bool live = false) : IProgressReporter
{
    /// <summary>The longest a live plain watch stays silent while steps complete.</summary>
    public static readonly TimeSpan LiveEvery = TimeSpan.FromSeconds(1);

    private Stopwatch? _sinceLine;

    public Task<T> ShowWhileAsync<T>(Func<Task<T>> watch) => watch();

    public void Report(StepProgress p)
    {
        int every = Math.Max(1, p.TotalSteps / 10);
        bool sampled = p.Step == 1 || p.Step == p.TotalSteps || p.Step % every == 0 || !double.IsFinite(p.Loss);
        bool due = live && (_sinceLine is null || _sinceLine.Elapsed >= LiveEvery);
        if (!sampled && !due) return;
        output.WriteLine($"step {p.Step}: loss {p.Loss.ToString("G10", CultureInfo.InvariantCulture)}");
        if (live) (_sinceLine ??= new Stopwatch()).Restart();
    }

    public void ReportEval(EvalRecord e) => output.WriteLine(EvalLine(e));

    /// <summary><c>epoch 3 (step 1407): test loss 0.3521, accuracy 87.41%</c> (<c>val loss</c> for the validation set)</summary>
    public static string EvalLine(EvalRecord e) =>
        $"epoch {e.Epoch} (step {e.Step}): {e.Split} loss {e.Loss.ToString("G6", CultureInfo.InvariantCulture)}{Accuracy(e.Accuracy)}";

    /// <summary><c>, accuracy 87.41%</c>; empty for targets that are not classes (NaN).</summary>
    public static string Accuracy(double accuracy) =>
        double.IsNaN(accuracy) ? "" : $", accuracy {(100 * accuracy).ToString("F2", CultureInfo.InvariantCulture)}%";
}
