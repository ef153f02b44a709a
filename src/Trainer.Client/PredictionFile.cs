using System.Globalization;
using Trainer.Core.Data;
using Trainer.Core.Training;

namespace Trainer.Client;

internal enum PredictionFormat { Npy, Csv }

/// <summary>
/// Where `predict --out` writes every prediction, checked before anything runs (<see cref="OutputFile"/>):
/// .npy: the classes, int64, shape (N,), for numpy (<c>np.load(f) == labels</c>);
/// .csv: a header, then <c>index,class,p0,...</c> with each class's softmax probability (ce) or
/// <c>index,class,z0,...</c> with the raw outputs (sse, mse), every number in round-trip precision.
/// </summary>
internal sealed record PredictionFile(string Path, PredictionFormat Format)
{
    public static PredictionFile Parse(string field, string path) =>
        new(path, OutputFile.FormatOf(field, path, "allowed: a file name ending in .npy (the classes, int64) or .csv (index, class and each class's probability or output)",
            (".npy", PredictionFormat.Npy), (".csv", PredictionFormat.Csv)));

    /// <summary>What the file holds, for the line that says it was written.</summary>
    public string Describe(Predictions predictions) => Format == PredictionFormat.Npy
        ? $"the classes, int64, shape ({predictions.Samples},)"
        : $"index, class, {ScorePrefix(predictions)}0..{ScorePrefix(predictions)}{predictions.Width - 1}";

    public void Write(Predictions predictions)
    {
        using var stream = File.Create(Path);
        if (Format == PredictionFormat.Npy)
        {
            Npy.Write(stream, predictions.Classes.Select(c => (long)c).ToArray(), predictions.Samples);
            return;
        }
        using var writer = new StreamWriter(stream);
        var prefix = ScorePrefix(predictions);
        writer.WriteLine("index,class," + string.Join(",", Enumerable.Range(0, predictions.Width).Select(k => $"{prefix}{k}")));
        for (int i = 0; i < predictions.Samples; i++)
        {
            writer.Write(string.Create(CultureInfo.InvariantCulture, $"{i},{predictions.Classes[i]}"));
            foreach (double score in predictions.ScoresOf(i)) writer.Write("," + score.ToString("R", CultureInfo.InvariantCulture));
            writer.WriteLine();
        }
    }

    private static string ScorePrefix(Predictions predictions) => predictions.AreProbabilities ? "p" : "z";
}
