using System.Text.Json;

namespace Trainer.Cluster.Tests;

/// <summary>
/// The "relu_formula" classifier of tests/reference/evaluation/make_numpy_values.py (784-32-10 relu,
/// biases, weights from sine formulas) saved as npy weights, and numpy's recorded loss and correct
/// count for it on the fixture's 512 training images.
/// </summary>
internal static class FormulaClassifier
{
    public static readonly string[] Model = ["--model", "784-32-10", "--activation", "relu", "--bias"];

    /// <summary>w1[i] = 0.05 sin(0.37 i + 1), b1[j] = 0.1 cos(j), w2[i] = 0.3 sin(0.91 i + 2), b2[j] = 0.05 j, as the script builds them.</summary>
    public static string WriteWeights()
    {
        var folder = Cli.TempFolder();
        CliBadInputTests.WriteNpy(folder, "w1.npy", Fill(32 * 784, i => 0.05 * Math.Sin(0.37 * i + 1)), 32, 784);
        CliBadInputTests.WriteNpy(folder, "b1.npy", Fill(32, j => 0.1 * Math.Cos(j)), 32);
        CliBadInputTests.WriteNpy(folder, "w2.npy", Fill(10 * 32, i => 0.3 * Math.Sin(0.91 * i + 2)), 10, 32);
        CliBadInputTests.WriteNpy(folder, "b2.npy", Fill(10, j => 0.05 * j), 10);
        return folder;
    }

    /// <summary>numpy's rows, correct count and loss (ce, mse or sse) for this classifier.</summary>
    public static (int Rows, int Correct, double Loss) Numpy(string loss)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "reference", "evaluation", "numpy_values.json")));
        var recorded = doc.RootElement.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "relu_formula");
        return (recorded.GetProperty("rows").GetInt32(), recorded.GetProperty("correct").GetInt32(), recorded.GetProperty("losses").GetProperty(loss).GetDouble());
    }

    private static double[] Fill(int count, Func<int, double> rule) => [.. Enumerable.Range(0, count).Select(rule)];
}
