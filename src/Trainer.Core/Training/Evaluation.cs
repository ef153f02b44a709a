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
/// layer: the buffers are BatchRows x the widest layer, made once per thread and reused.
/// </summary>
/// <remarks>
/// The batches' summed losses are added in row order and scaled once (<see cref="Losses.Scale"/>
/// over all rows), so the loss does not depend on <see cref="BatchRows"/> beyond rounding, and not at all
/// on how many threads scored the batches (<see cref="EvaluateAsync"/>: each batch's sum is kept, then
/// added in batch order). argmax takes the first of equal values, and a NaN output counts as the largest,
/// as numpy's argmax does. Runs in float64 with the hand-derived <see cref="Mlp"/>; a float32 job's
/// parameters widen exactly. One call at a time.
/// </remarks>
public sealed class Evaluation
{
    /// <summary>Default rows per forward pass: 1024 x 784 inputs is 6.4 MB of float64.</summary>
    public const int DefaultBatchRows = 1024;

    private readonly ModelSpec _spec;
    private readonly IBlas? _blas;
    // One per thread that has scored batches (index 0: the calling thread's), made as first needed.
    private readonly List<Scratch> _scratch = [];

    public Evaluation(ModelSpec model, int batchRows = DefaultBatchRows, IBlas? blas = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchRows);
        (_spec, _blas, BatchRows) = (model, blas, batchRows);
        _scratch.Add(new Scratch(model, batchRows, blas));
    }

    public ModelSpec Model => _spec;

    /// <summary>Rows per forward pass.</summary>
    public int BatchRows { get; }

    /// <summary>
    /// The loss and accuracy of <paramref name="parameters"/> on every row of <paramref name="data"/>: a
    /// <see cref="Dataset"/>'s arrays in place, other rows (files a silo maps) read BatchRows at a time.
    /// </summary>
    public EvaluationResult Evaluate(ReadOnlySpan<double> parameters, ISampleRows data)
    {
        int batches = Batches(data);
        double sum = 0;
        int correct = 0;
        for (int batch = 0; batch < batches; batch++)
        {
            var (loss, right) = ScoreBatch(0, parameters, data, batch);
            sum += loss;
            correct += right;
        }
        return Result(data, sum, correct);
    }

    /// <summary>
    /// <see cref="Evaluate"/>'s result, to the bit, with the batches scored by up to <paramref name="threads"/>
    /// threads at once: <paramref name="run"/> starts an action on a thread that may compute (a silo's compute
    /// threads; <see cref="Task.Run(Action)"/> elsewhere), and each claims batches until none is left. Why: a job
    /// scores its test set between steps, while every core would otherwise wait for one.
    /// </summary>
    public async Task<EvaluationResult> EvaluateAsync(double[] parameters, ISampleRows data, int threads, Func<Action, Task> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        int batches = Batches(data);
        threads = Math.Clamp(threads, 1, Math.Max(1, batches));
        while (_scratch.Count < threads) _scratch.Add(new Scratch(_spec, BatchRows, _blas));
        var losses = new double[batches];
        var correct = new int[batches];
        int next = -1;
        await Task.WhenAll(Enumerable.Range(0, threads).Select(t => run(() =>
        {
            for (int batch; (batch = Interlocked.Increment(ref next)) < batches;)
                (losses[batch], correct[batch]) = ScoreBatch(t, parameters, data, batch);
        })));
        double sum = 0;
        int right = 0;
        for (int batch = 0; batch < batches; batch++)
        {
            sum += losses[batch];
            right += correct[batch];
        }
        return Result(data, sum, right);
    }

    private int Batches(ISampleRows data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.InputSize != Model.InputSize || data.OutputSize != Model.OutputSize)
            throw new ArgumentException($"The data has {data.InputSize} inputs and {data.OutputSize} targets per row; the model {Model.Architecture} needs {Model.InputSize} and {Model.OutputSize}.", nameof(data));
        return (data.Count + BatchRows - 1) / BatchRows;
    }

    // Forward pass number batch (rows batch·BatchRows onwards) on thread's buffers.
    private (double Loss, int Correct) ScoreBatch(int thread, ReadOnlySpan<double> parameters, ISampleRows data, int batch) =>
        _scratch[thread].Score(parameters, data, batch * BatchRows, Math.Min(BatchRows, data.Count - batch * BatchRows));

    private EvaluationResult Result(ISampleRows data, double sum, int correct) =>
        new(data.Count, sum * Model.Loss.Scale(data.Count, Model.OutputSize), correct);

    /// <summary>One thread's model buffers, and its rows when they are not a <see cref="Dataset"/>'s arrays.</summary>
    private sealed class Scratch(ModelSpec spec, int batchRows, IBlas? blas)
    {
        private readonly Mlp _model = new(spec, blas);
        private readonly double[] _outputs = new double[batchRows * spec.OutputSize];
        // Rows read from somewhere other than a Dataset's arrays, a batch at a time (made at the first such read).
        private double[] _inputs = [], _targets = [];

        /// <summary>Rows [start, start + count)'s summed loss and how many of them are classified right.</summary>
        public (double Loss, int Correct) Score(ReadOnlySpan<double> parameters, ISampleRows data, int start, int rows)
        {
            Rows(data, start, rows, out var inputs, out var targets);
            double loss = _model.Loss(parameters, inputs, targets, rows, _outputs);
            int classes = spec.OutputSize, correct = 0;
            for (int r = 0; r < rows; r++)
            {
                int predicted = TensorPrimitives.IndexOfMax(_outputs.AsSpan(r * classes, classes));
                if (predicted == TensorPrimitives.IndexOfMax(targets.Slice(r * classes, classes))) correct++;
            }
            return (loss, correct);
        }

        /// <summary>Rows [start, start + count) of <paramref name="data"/>: in place for a <see cref="Dataset"/>, else read into the buffers.</summary>
        private void Rows(ISampleRows data, int start, int count, out ReadOnlySpan<double> inputs, out ReadOnlySpan<double> targets)
        {
            if (data is Dataset set)
            {
                inputs = set.X.AsSpan(start * set.InputSize, count * set.InputSize);
                targets = set.Y.AsSpan(start * set.OutputSize, count * set.OutputSize);
                return;
            }
            if (_inputs.Length == 0) (_inputs, _targets) = (new double[batchRows * data.InputSize], new double[batchRows * data.OutputSize]);
            for (int r = 0; r < count; r++)
            {
                data.ReadInputs<double>(start + r, _inputs.AsSpan(r * data.InputSize, data.InputSize));
                data.ReadTargets<double>(start + r, _targets.AsSpan(r * data.OutputSize, data.OutputSize));
            }
            inputs = _inputs.AsSpan(0, count * data.InputSize);
            targets = _targets.AsSpan(0, count * data.OutputSize);
        }
    }
}
