using Trainer.Abstractions;

namespace Trainer.Client;

/// <summary>--json: one {"event":"step","step":N,"loss":X} line per step (the log `trainer plot` reads).</summary>
internal sealed class JsonProgress(TextWriter output) : IProgressReporter
{
    public Task<T> ShowWhileAsync<T>(Func<Task<T>> watch) => watch();

    public void Report(StepProgress p) =>
        output.WriteLine($"{{\"event\":\"step\",\"step\":{p.Step},\"loss\":{JobWatcher.Number(p.Loss)}}}");

    /// <summary>{"event":"eval","step":S,"epoch":E,"split":"test","loss":L,"accuracy":A}, "val" for the validation set (what `trainer plot` draws as accuracy).</summary>
    public void ReportEval(EvalRecord e) =>
        output.WriteLine($"{{\"event\":\"eval\",\"step\":{e.Step},\"epoch\":{e.Epoch},\"split\":{System.Text.Json.JsonSerializer.Serialize(e.Split)},\"loss\":{JobWatcher.Number(e.Loss)},\"accuracy\":{JobWatcher.Number(e.Accuracy)}}}");
}
