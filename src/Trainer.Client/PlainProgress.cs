using System.Globalization;

namespace Trainer.Client;

/// <summary>Like the tutorial: the first and last step, about ten lines in between, and every non-finite loss.</summary>
internal sealed class PlainProgress(TextWriter output) : IProgressReporter
{
    public Task<T> ShowWhileAsync<T>(Func<Task<T>> watch) => watch();

    public void Report(StepProgress p)
    {
        int every = Math.Max(1, p.TotalSteps / 10);
        if (p.Step == 1 || p.Step == p.TotalSteps || p.Step % every == 0 || !double.IsFinite(p.Loss))
            output.WriteLine($"step {p.Step}: loss {p.Loss.ToString("G10", CultureInfo.InvariantCulture)}");
    }
}
