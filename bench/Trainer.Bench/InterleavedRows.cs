using System.Diagnostics;

namespace Trainer.Bench;

/// <summary>
/// Rows timed in turn within each repetition, so a shared machine's load falls on all of them alike
/// (why not BenchmarkDotNet: see <see cref="GemmRatio"/>), and a markdown table of their medians.
/// </summary>
internal static class InterleavedRows
{
    /// <summary>A row: its name, and what makes a fresh step for each repetition (the argument is the step's number, from 1).</summary>
    public sealed record Row(string Name, Func<Action<int>> Make);

    /// <summary>
    /// Per row, the seconds per step of each repetition: a fresh step from <see cref="Row.Make"/>, <paramref name="warmup"/>
    /// untimed steps (JIT, caches), then <paramref name="steps"/> timed ones.
    /// </summary>
    public static List<double>[] Time(IReadOnlyList<Row> rows, int repetitions, int warmup, int steps)
    {
        var times = rows.Select(_ => new List<double>()).ToArray();
        for (int rep = 0; rep < repetitions; rep++)
            for (int r = 0; r < rows.Count; r++)
            {
                var step = rows[r].Make();
                for (int i = 1; i <= warmup; i++) step(i);
                var clock = Stopwatch.StartNew();
                for (int i = warmup + 1; i <= warmup + steps; i++) step(i);
                times[r].Add(clock.Elapsed.TotalSeconds / steps);
            }
        return times;
    }

    /// <summary>Prints "| row | median UNIT/step | min-max |" with each row's times scaled by <paramref name="scale"/> (seconds to the unit).</summary>
    public static void PrintMedians(IReadOnlyList<Row> rows, List<double>[] times, string unit, double scale, string format)
    {
        Console.WriteLine($"| row | median {unit}/step | min-max |");
        Console.WriteLine("|---|---:|---|");
        for (int r = 0; r < rows.Count; r++)
            Console.WriteLine($"| {rows[r].Name} | {Spread(times[r], scale, format)} |");
    }

    /// <summary>"median[suffix] | min-max" of <paramref name="times"/> scaled by <paramref name="scale"/>.</summary>
    public static string Spread(IEnumerable<double> times, double scale, string format, string suffix = "")
    {
        var sorted = times.Select(t => t * scale).Order().ToArray();
        return $"{sorted[sorted.Length / 2].ToString(format)}{suffix} | {sorted[0].ToString(format)}-{sorted[^1].ToString(format)}";
    }
}
