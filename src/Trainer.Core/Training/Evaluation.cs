using System.Numerics.Tensors;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;

namespace Trainer.Core.Training;

/// <summary>How well parameters fit a dataset: its loss and, for class targets, its accuracy.</summary>
/// <param name="Samples">Rows evaluated.</param>
/// <param name="Loss">The model's loss over all the rows, as a full-batch step on them reports it: the mean for ce and mse, the sum for sse.</param>
/// <param name="Correct">Rows whose largest output is at their target's largest value (argmax against argmax).</param>
public sealed record EvaluationResult(int Samples, double Loss, int Correct)
{
    /// <summary>Correct / Samples, from 0 to 1.</summary>
    public double Accuracy => (double)Correct / Samples;
}

/// <summary>
/// Evaluates parameters on a dataset (x, one-hot y) with forward passes of at most
/// <see cref="BatchRows"/> rows, so 10,000 x 784 test images never need a 10,000-row activation per
/// layer: the buffers are BatchRows x the widest layer, made once and reused.
/// </summary>
/// <remarks>
/// The batches' summed losses are added in row order and scaled once (<see cref="Losses.Scale"/>
/// over all rows), so the loss does not depend on <see cref="BatchRows"/> beyond rounding.
/// argmax takes the first of equal values, and a NaN output counts as the largest, as numpy's
/// argmax does. Runs in float64 with the
/// hand-derived <see cref="Mlp"/>; a float32 job's parameters widen exactly. Not thread-safe.
/// </remarks>
public sealed class Evaluation
{
    /// <summary>Default rows per forward pass: 1024 x 784 inputs is 6.4 MB of float64.</summary>
    public const int DefaultBatchRows = 1024;

    private readonly Mlp _model;
    private readonly double[] _outputs;

    public Evaluation(ModelSpec model, int batchRows = DefaultBatchRows, IBlas? blas = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchRows);
        _model = new Mlp(model, blas);
        BatchRows = batchRows;
        _outputs = new double[batchRows * model.OutputSize];
    }

    public ModelSpec Model => _model.Spec;

    // Rows read from somewhere other than a Dataset's arrays, a batch at a time (made at the first such read).
    private double[] _inputs = [], _targets = [];

    /// <summary>Rows [start, start + count) of <paramref name="data"/>: in place for a <see cref="Dataset"/>, else read into the buffers.</summary>
    private void Rows(ISampleRows data, int start, int count, out ReadOnlySpan<double> inputs, out ReadOnlySpan<double> targets)
    {
        if (data is Dataset set)
        {
            inputs = set.X.AsSpan(start * set.InputSize, count * set.InputSize);
            targets = set.Y.AsSpan(start * set.OutputSize, count * set.OutputSize);
            return;
        }
        if (_inputs.Length == 0) (_inputs, _targets) = (new double[BatchRows * data.InputSize], new double[BatchRows * data.OutputSize]);
        for (int r = 0; r < count; r++)
        {
            data.ReadInputs<double>(start + r, _inputs.AsSpan(r * data.InputSize, data.InputSize));
            data.ReadTargets<double>(start + r, _targets.AsSpan(r * data.OutputSize, data.OutputSize));
        }
        inputs = _inputs.AsSpan(0, count * data.InputSize);
        targets = _targets.AsSpan(0, count * data.OutputSize);
    }

    /// <summary>Rows per forward pass.</summary>
    public int BatchRows { get; }

    /// <summary>
    /// The loss and accuracy of <paramref name="parameters"/> on every row of <paramref name="data"/>: a
    /// <see cref="Dataset"/>'s arrays in place, other rows (files a silo maps) read BatchRows at a time.
    /// </summary>
    public EvaluationResult Evaluate(ReadOnlySpan<double> parameters, ISampleRows data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.InputSize != Model.InputSize || data.OutputSize != Model.OutputSize)
            throw new ArgumentException($"The data has {data.InputSize} inputs and {data.OutputSize} targets per row; the model {Model.Architecture} needs {Model.InputSize} and {Model.OutputSize}.", nameof(data));
        int classes = Model.OutputSize;
        double sum = 0;
        int correct = 0;
        for (int start = 0; start < data.Count; start += BatchRows)
        {
            int rows = Math.Min(BatchRows, data.Count - start);
            Rows(data, start, rows, out var inputs, out var targets);
            sum += _model.Loss(parameters, inputs, targets, rows, _outputs);
            for (int r = 0; r < rows; r++)
            {
                int predicted = TensorPrimitives.IndexOfMax(_outputs.AsSpan(r * classes, classes));
                if (predicted == TensorPrimitives.IndexOfMax(targets.Slice(r * classes, classes))) correct++;
            }
        }
        return new EvaluationResult(data.Count, sum * Model.Loss.Scale(data.Count, classes), correct);
    }
}
