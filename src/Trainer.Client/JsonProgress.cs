namespace Trainer.Client;

/// <summary>--json: one {"event":"step","step":N,"loss":X} line per step (the log `trainer plot` reads).</summary>
internal sealed class JsonProgress(TextWriter output) : IProgressReporter
{
    public Task<T> ShowWhileAsync<T>(Func<Task<T>> watch) => watch();

    public void Report(StepProgress p) =>
        output.WriteLine($"{{\"event\":\"step\",\"step\":{p.Step},\"loss\":{JobWatcher.Number(p.Loss)}}}");
}
