using System.Text.Json;
using Trainer.Core;

namespace Trainer.Client;

/// <summary>
/// Reads a log written by `trainer train --json` or `trainer watch --json` (one JSON object per
/// line) into a <see cref="LossSeries"/> named after the file: its "step" events and its "eval"
/// events. Other events (the final one, "submitted", "error") and lines that are not JSON objects
/// (stderr mixed in with 2>&amp;1) are skipped. Bad input is a <see cref="SpecException"/> naming the source.
/// </summary>
internal static class LossLogReader
{
    public const string Field = "source";

    public static LossSeries Read(string path)
    {
        if (!File.Exists(path))
            throw new SpecException(Field, path, "no such file; pass a log written by `trainer train --json` or `trainer watch --json`, or a job id with --gateway");
        var steps = new List<int>();
        var losses = new List<double>();
        var evals = new List<EvalPoint>();
        var text = File.ReadAllText(path);
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (!line.StartsWith('{')) continue;
            // NOTE: a log still being written (`trainer watch --json | tee log`) may end in half a line; that one is left out.
            bool unfinished = i == lines.Length - 1 && !text.EndsWith('\n');
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(line);
            }
            catch (JsonException) when (unfinished)
            {
                continue;
            }
            catch (JsonException)
            {
                throw Bad(path, i, "it starts like a JSON object but does not parse");
            }
            using (document) Add(document.RootElement, path, i, steps, losses, evals);
        }
        if (steps.Count == 0)
            throw new SpecException(Field, path, "it holds no step events ({\"event\":\"step\",\"step\":N,\"loss\":X} lines, as `trainer train --json` writes); nothing was plotted");
        return new LossSeries(Path.GetFileName(path), [.. steps], [.. losses], evals);
    }

    private static void Add(JsonElement e, string path, int line, List<int> steps, List<double> losses, List<EvalPoint> evals)
    {
        switch (Text(e, "event"))
        {
            case "step":
                AddStep(steps, losses, Int(e, "step", path, line), Number(e, "loss", path, line));
                break;
            case "eval":
                evals.Add(new EvalPoint(Int(e, "step", path, line), e.TryGetProperty("epoch", out var epoch) && epoch.ValueKind == JsonValueKind.Number && epoch.TryGetInt32(out var n) ? n : null,
                    Text(e, "split") ?? "eval", Number(e, "loss", path, line), Number(e, "accuracy", path, line)));
                break;
        }
    }

    /// <summary>
    /// Appends one step. A step at or before the last one starts the history over from there: a job
    /// that lost its parameter server replays from its checkpoint, and a log may hold a watch --from-start.
    /// </summary>
    private static void AddStep(List<int> steps, List<double> losses, int step, double loss)
    {
        int keep = steps.Count;
        while (keep > 0 && steps[keep - 1] >= step) keep--;
        steps.RemoveRange(keep, steps.Count - keep);
        losses.RemoveRange(keep, losses.Count - keep);
        steps.Add(step);
        losses.Add(loss);
    }

    private static string? Text(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int Int(JsonElement e, string name, string path, int line) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n >= 1
            ? n : throw Bad(path, line, $"its \"{name}\" is not a step number from 1");

    /// <summary>A number, or null for a loss that was not finite (JSON has no NaN): NaN.</summary>
    private static double Number(JsonElement e, string name, string path, int line) =>
        e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.Number or JsonValueKind.Null
            ? v.ValueKind == JsonValueKind.Null ? double.NaN : v.GetDouble()
            : throw Bad(path, line, $"its \"{name}\" is not a number");

    private static SpecException Bad(string path, int index, string problem) =>
        new(Field, $"{path}:{index + 1}", $"{problem}; allowed: the JSON lines of `trainer train --json` or `trainer watch --json`");
}
