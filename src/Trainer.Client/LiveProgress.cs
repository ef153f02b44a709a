using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;
using Trainer.Abstractions;

namespace Trainer.Client;

/// <summary>
/// The live display on a terminal: a bar, the percentage, then
/// <c>[epoch E/N  ]step S/T  loss L[  val accuracy V][  accuracy A]  R steps/s  elapsed h:mm:ss  ETA h:mm:ss</c>
/// (the accuracy is the test set's: "test accuracy" beside a validation one).
/// </summary>
internal sealed class LiveProgress(IAnsiConsole console) : IProgressReporter
{
    // Written on the watch's thread, read by Spectre's refresh thread (10 times a second).
    private volatile StepProgress? _latest;
    private ProgressTask? _task;

    public Task<T> ShowWhileAsync<T>(Func<Task<T>> watch) =>
        new Progress(console)
            .AutoClear(false)
            .Columns(new ProgressBarColumn(), new PercentageColumn(), new StatsColumn(this))
            .StartAsync(context =>
            {
                _task = context.AddTask("job", maxValue: 1);
                return watch();
            });

    public void Report(StepProgress progress)
    {
        _latest = progress;
        if (_task is not { } task) return;
        task.MaxValue = Math.Max(1, progress.TotalSteps);
        task.Value = progress.Step;
    }

    /// <summary>
    /// Nothing of its own: the accuracy shows in the bar from the next step on (JobWatcher passes it),
    /// and writing lines while Spectre redraws the live display from its own thread would tear it.
    /// </summary>
    public void ReportEval(EvalRecord eval) { }

    public static string Describe(StepProgress p)
    {
        var parts = new List<string>();
        if (p.Epoch is { } epoch) parts.Add(p.TotalEpochs is { } epochs ? $"epoch {epoch}/{epochs}" : $"epoch {epoch}");
        parts.Add($"step {p.Step}/{p.TotalSteps}");
        parts.Add($"loss {p.Loss.ToString("G6", CultureInfo.InvariantCulture)}");
        if (p.ValidationAccuracy is { } validation) parts.Add($"val accuracy {validation.ToString("0.0000", CultureInfo.InvariantCulture)}");
        if (p.Accuracy is { } accuracy) parts.Add($"{(p.ValidationAccuracy is null ? "" : "test ")}accuracy {accuracy.ToString("0.0000", CultureInfo.InvariantCulture)}");
        parts.Add($"{p.StepsPerSecond.ToString("F1", CultureInfo.InvariantCulture)} steps/s");
        parts.Add($"elapsed {Clock(p.Elapsed)}");
        parts.Add($"ETA {(p.Remaining is { } left ? Clock(left) : "--:--")}");
        return string.Join("  ", parts);
    }

    /// <summary>h:mm:ss to the nearest second, with hours past 24 rather than days.</summary>
    private static string Clock(TimeSpan t)
    {
        long seconds = (long)Math.Round(t.TotalSeconds);
        return $"{seconds / 3600}:{seconds / 60 % 60:00}:{seconds % 60:00}";
    }

    /// <summary>The text after the bar, built when Spectre redraws rather than at every step.</summary>
    private sealed class StatsColumn(LiveProgress owner) : ProgressColumn
    {
        protected override bool NoWrap => true;

        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(owner._latest is { } p ? Describe(p) : "waiting for the first step");
    }
}
