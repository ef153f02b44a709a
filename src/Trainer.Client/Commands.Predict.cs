using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trainer.Core.Training;

namespace Trainer.Client;

/// <summary>
/// `trainer predict`: saved weights' class (argmax) for every sample of a split of --data, with the
/// softmax probabilities (ce) or raw outputs; the first few and the count per class printed, or all
/// of them written to --out (<see cref="PredictionFile"/>). Computed in this process by <see cref="Prediction"/>.
/// </summary>
internal sealed partial class Commands
{
    /// <summary>Predictions printed without --out; the rest are counted.</summary>
    private const int PreviewSamples = 10;

    private Task<int> Predict(ParseResult r, CancellationToken cancellation)
    {
        var arguments = CliOptions.SavedModelArguments(r);
        var file = r.GetValue(CliOptions.PredictOut) is { } path ? PredictionFile.Parse("out", path) : null;
        bool json = r.GetValue(CliOptions.Json);
        var model = arguments.ToModelSpec();
        var weights = arguments.LoadWeights(model);
        var (split, inputs, count) = arguments.LoadInputs(model);
        var predictions = new Prediction(model).Predict(weights, inputs, count);
        file?.Write(predictions);
        if (json) WritePredictionsJson(split, predictions, file);
        else WritePredictionsText(split, predictions, file);
        return Task.FromResult(ExitCodes.Success);
    }

    private void WritePredictionsText(string split, Predictions predictions, PredictionFile? file)
    {
        output.WriteLine($"{split}: {predictions.Samples} samples");
        if (file is not null)
            output.WriteLine($"wrote {predictions.Samples} predictions to {file.Path} ({file.Describe(predictions)})");
        else
        {
            string score = predictions.AreProbabilities ? "probability" : "output";
            for (int i = 0; i < Math.Min(PreviewSamples, predictions.Samples); i++)
            {
                int c = predictions.Classes[i];
                output.WriteLine($"  sample {i}: class {c}, {score} {predictions.ScoresOf(i)[c].ToString("G4", CultureInfo.InvariantCulture)}");
            }
            if (predictions.Samples > PreviewSamples)
                output.WriteLine($"  ({predictions.Samples - PreviewSamples} more; --out FILE.npy or FILE.csv writes every prediction)");
        }
        output.WriteLine("predicted per class: " + string.Join(", ", predictions.CountPerClass().Select((n, c) => $"{c}: {n}")));
    }

    /// <summary>Without --out, one line per sample; then one summary line.</summary>
    private void WritePredictionsJson(string split, Predictions predictions, PredictionFile? file)
    {
        string scoresKey = predictions.AreProbabilities ? "probabilities" : "outputs";
        if (file is null)
            for (int i = 0; i < predictions.Samples; i++)
            {
                var line = new JsonObject
                {
                    ["event"] = "prediction", ["split"] = split, ["index"] = i, ["class"] = predictions.Classes[i],
                    [scoresKey] = JsonSerializer.SerializeToNode(predictions.ScoresOf(i).ToArray().Select(Finite)),
                };
                output.WriteLine(line.ToJsonString());
            }
        output.WriteLine(JsonSerializer.Serialize(new
        {
            @event = "predictions", split, samples = predictions.Samples, per_class = predictions.CountPerClass(), @out = file?.Path,
        }));
    }
}
