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

    // The bar's share of a line: a quarter of the terminal, 10 to 40 columns; the percentage takes 5 and the gaps 2.
    private int BarWidth => Math.Clamp(console.Profile.Width / 4, 10, 40);

    public Task<T> ShowWhileAsync<T>(Func<Task<T>> watch) =>
        new Progress(console)
            .AutoClear(false)
            .Columns(new ProgressBarColumn { Width = BarWidth }, new PercentageColumn(), new StatsColumn(this))
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

    public static string Describe(StepProgress p) => Describe(p, int.MaxValue);

    /// <summary>
    /// The line in at most <paramref name="width"/> columns: a line that wrapped would tear the live display,
    /// so the rate goes first, then the elapsed time, then the accuracies; the rest is cut at the width.
    /// </summary>
    public static string Describe(StepProgress p, int width)
    {
        // (text, the order it is dropped in when the line is too long: 0 never)
        var parts = new List<(string Text, int Drop)>();
        if (p.Epoch is { } epoch) parts.Add((p.TotalEpochs is { } epochs ? $"epoch {epoch}/{epochs}" : $"epoch {epoch}", 0));
        parts.Add(($"step {p.Step}/{p.TotalSteps}", 0));
        parts.Add(($"loss {p.Loss.ToString("G6", CultureInfo.InvariantCulture)}", 0));
        if (p.ValidationAccuracy is { } validation) parts.Add(($"val accuracy {validation.ToString("0.0000", CultureInfo.InvariantCulture)}", 3));
        if (p.Accuracy is { } accuracy) parts.Add(($"{(p.ValidationAccuracy is null ? "" : "test ")}accuracy {accuracy.ToString("0.0000", CultureInfo.InvariantCulture)}", 3));
        parts.Add(($"{p.StepsPerSecond.ToString("F1", CultureInfo.InvariantCulture)} steps/s", 1));
        parts.Add(($"elapsed {Clock(p.Elapsed)}", 2));
        parts.Add(($"ETA {(p.Remaining is { } left ? Clock(left) : "--:--")}", 0));
        for (int dropped = 0; ; dropped++)
        {
            var line = string.Join("  ", parts.Where(part => part.Drop == 0 || part.Drop > dropped).Select(part => part.Text));
            if (line.Length <= width) return line;
            if (dropped == 3) return line[..Math.Max(0, width)];
        }
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
            // The percentage (5 columns) and two gaps beside the bar.
            new Text(owner._latest is { } p ? Describe(p, options.ConsoleSize.Width - owner.BarWidth - 7) : "waiting for the first step");
    }
}
