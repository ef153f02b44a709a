using System.Text.Json;

namespace Trainer.Process.Tests;

/// <summary>Reads what `trainer train --json` prints: one JSON event per line.</summary>
public static class TrainJson
{
    /// <summary>The last line: {"event":"completed",...} when the job completed.</summary>
    public static JsonElement FinalEvent(string jsonLines) =>
        JsonDocument.Parse(jsonLines.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;

    /// <summary>The losses of the {"event":"step"} lines, in step order.</summary>
    public static double[] StepLosses(string jsonLines) =>
    [
        .. Events(jsonLines)
            .Where(e => e.GetProperty("event").GetString() == "step")
            .OrderBy(e => e.GetProperty("step").GetInt32())
            .Select(e => e.GetProperty("loss").GetDouble()),
    ];

    /// <summary>Each step's loss as the events first printed it (a job resumed from a checkpoint may print a step again).</summary>
    public static Dictionary<int, double> FirstLossOfEachStep(string jsonLines)
    {
        var losses = new Dictionary<int, double>();
        foreach (var e in Events(jsonLines).Where(e => e.GetProperty("event").GetString() == "step"))
            losses.TryAdd(e.GetProperty("step").GetInt32(), e.GetProperty("loss").GetDouble());
        return losses;
    }

    /// <summary>The job's id, as the events name it; null when none does.</summary>
    public static string? JobId(string jsonLines) =>
        Events(jsonLines).Where(e => e.TryGetProperty("job", out _)).Select(e => e.GetProperty("job").GetString()).LastOrDefault();

    /// <summary>
    /// How many steps of <paramref name="job"/> take about <paramref name="seconds"/> on this cluster,
    /// measured by short runs of <paramref name="calibrationSteps"/>, at least <paramref name="minSteps"/>:
    /// a job that must still be running when something happens to the cluster, whatever the machine's speed.
    /// Two runs (<see cref="CalibrationJobs"/>), the second timed: the silos compile the per-step path fully
    /// optimized only after its first calls (tiered compilation), so a fresh cluster's first steps are slower
    /// than the job's will be, and a job sized by them could end before the test acts on it.
    /// </summary>
    public static async Task<int> StepsForAsync(LocalCluster cluster, string[] job, int calibrationSteps, double seconds, int minSteps)
    {
        double rate = 0;
        for (int run = 0; run < CalibrationJobs; run++)
        {
            var calibration = await cluster.TrainerAsync(["train", .. job, "--steps", $"{calibrationSteps}", "--json"]);
            Assert.True(calibration.Code == 0, calibration.ToString());
            rate = FinalEvent(calibration.Out).GetProperty("steps_per_second").GetDouble();
        }
        return (int)Math.Clamp(rate * seconds, minSteps, 50_000);
    }

    /// <summary>The jobs <see cref="StepsForAsync"/> runs on the cluster.</summary>
    public const int CalibrationJobs = 2;

    private static IEnumerable<JsonElement> Events(string jsonLines) =>
        jsonLines.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement);
}
