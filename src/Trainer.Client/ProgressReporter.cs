using Trainer.Abstractions;
using Spectre.Console;
using Trainer.Core;

namespace Trainer.Client;

/// <summary>What `train` and `watch` show of a job's steps while it runs.</summary>
internal interface IProgressReporter
{
    /// <summary>Runs <paramref name="watch"/> with the display up; its last state stays on screen.</summary>
    Task<T> ShowWhileAsync<T>(Func<Task<T>> watch);

    void Report(StepProgress progress);

    /// <summary>An evaluation of the job's parameters on its validation or test set (after a step already reported).</summary>
    void ReportEval(EvalRecord eval);
}

/// <summary>--progress: auto (a live bar on a terminal, else plain lines), bar, plain.</summary>
internal enum ProgressMode { Auto, Bar, Plain }

/// <summary>The one place that decides between the live display, plain lines and JSON lines.</summary>
internal static class ProgressReporters
{
    public static ProgressMode ParseMode(string value) => value switch
    {
        "auto" => ProgressMode.Auto,
        "bar" => ProgressMode.Bar,
        "plain" => ProgressMode.Plain,
        _ => throw new SpecException("progress", value, "allowed: auto (a live bar when the output is a terminal, else plain lines), bar, plain"),
    };

    /// <summary>
    /// --json always gives JSON lines; plain gives the sampled `step N: loss X` lines; bar the live
    /// display; auto the live display only when <paramref name="outputIsTerminal"/> and the terminal
    /// takes ANSI codes (not TERM=dumb), so redirected output, tests and CI get plain lines.
    /// </summary>
    /// <param name="live">Plain lines for a job already running (`watch`): see <see cref="PlainProgress"/>.</param>
    public static IProgressReporter For(ProgressMode mode, bool json, TextWriter output, bool outputIsTerminal, bool live = false)
    {
        if (json) return new JsonProgress(output);
        if (mode == ProgressMode.Plain || (mode == ProgressMode.Auto && !outputIsTerminal)) return new PlainProgress(output, live);
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = mode == ProgressMode.Bar ? AnsiSupport.Yes : AnsiSupport.Detect,
            // NOTE: Spectre's own detection calls a console non-interactive when any of stdin, stdout or
            // stderr is redirected; only stdout carries the display, and that was decided above.
            Interactive = InteractionSupport.Yes,
        });
        return console.Profile.Capabilities.Ansi ? new LiveProgress(console) : new PlainProgress(output, live);
    }
}
