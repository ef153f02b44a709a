using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Client;

/// <summary>
/// `trainer evaluate`: saved weights' loss and, for classes, accuracy on a split of --data, computed
/// in this process by <see cref="Evaluation"/> (no cluster: a forward pass needs none).
/// </summary>
internal sealed partial class Commands
{
    private async Task<int> Evaluate(ParseResult r, CancellationToken cancellation)
    {
        var arguments = CliOptions.SavedModelArguments(r);
        var model = arguments.ToModelSpec();
        var weights = arguments.LoadWeights(model);
        var (split, rows) = arguments.LoadRows(model);
        var result = await new Evaluation(model).EvaluateAsync(weights, rows, Environment.ProcessorCount, Task.Run);
        // An accuracy means something for ce, or for one-hot targets (class labels) with any loss; not for regression targets.
        bool classes = model.Loss == LossKind.CrossEntropy || Labels.AreOneHot(rows.Y, rows.OutputSize);
        if (r.GetValue(CliOptions.Json))
            output.WriteLine(JsonSerializer.Serialize(new
            {
                @event = "evaluation", split, samples = result.Samples, loss = Finite(result.Loss),
                accuracy = classes ? result.Accuracy : (double?)null, correct = classes ? result.Correct : (int?)null,
            }));
        else
            output.WriteLine($"{split}: {result.Samples} samples, loss {result.Loss.ToString("G4", CultureInfo.InvariantCulture)}"
                + (classes ? $", accuracy {(100 * result.Accuracy).ToString("F2", CultureInfo.InvariantCulture)}%" : ""));
        return ExitCodes.Success;
    }

    /// <summary>JSON has no NaN or infinity: such a value is written as null.</summary>
    private static double? Finite(double value) => double.IsFinite(value) ? value : null;
}
