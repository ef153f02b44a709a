using System.Numerics.Tensors;
using Trainer.Core.Linalg;
using Trainer.Core.Models;

namespace Trainer.Core.Training;

/// <summary>
/// What parameters predict for N samples: each sample's class and its scores, C per sample.
/// </summary>
/// <param name="Samples">N.</param>
/// <param name="Width">C: the model's outputs.</param>
/// <param name="Classes">The predicted class of each sample: the index of its largest output (argmax).</param>
/// <param name="Scores">(N, C) row-major: the softmax probabilities for ce, else the raw outputs.</param>
/// <param name="AreProbabilities">True when <paramref name="Scores"/> are softmax probabilities (ce).</param>
public sealed record Predictions(int Samples, int Width, int[] Classes, double[] Scores, bool AreProbabilities)
{
    /// <summary>The scores of sample <paramref name="sample"/>, C values.</summary>
    public ReadOnlySpan<double> ScoresOf(int sample) => Scores.AsSpan(sample * Width, Width);

    /// <summary>How many samples were predicted as each class, C counts.</summary>
    public int[] CountPerClass()
    {
        var counts = new int[Width];
        foreach (int c in Classes) counts[c]++;
        return counts;
    }
}

/// <summary>
/// Predicts with parameters: forward passes of at most <see cref="BatchRows"/> rows (as
/// <see cref="Evaluation"/> does), no targets needed. The class is the argmax of the outputs
/// (the logits, for ce): the first of equal values, a NaN counting as the largest, as numpy's argmax
/// and <see cref="Evaluation"/>'s accuracy take it. For ce the scores are softmax(z) per row,
/// computed stably (the row's max is subtracted before exp, as <see cref="SoftmaxCrossEntropy"/> does).
/// Not thread-safe.
/// </summary>
/// <remarks>Legend: N = samples, D = inputs, C = outputs; x (N, D), z (N, C), both row-major.</remarks>
public sealed class Prediction
{
    private readonly Mlp _model;

    public Prediction(ModelSpec model, int batchRows = Evaluation.DefaultBatchRows, IBlas? blas = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchRows);
        _model = new Mlp(model, blas);
        BatchRows = batchRows;
    }

    public ModelSpec Model => _model.Spec;

    /// <summary>Rows per forward pass.</summary>
    public int BatchRows { get; }

    /// <summary>The classes and scores of <paramref name="parameters"/> for the <paramref name="samples"/> rows of <paramref name="inputs"/>.</summary>
    public Predictions Predict(ReadOnlySpan<double> parameters, ReadOnlySpan<double> inputs, int samples)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(samples);
        int d = Model.InputSize, c = Model.OutputSize;
        if (inputs.Length != (long)samples * d)
            throw new ArgumentException($"inputs has {inputs.Length} values; {samples} samples of the model {Model.Architecture}'s {d} inputs are {(long)samples * d}.", nameof(inputs));
        var z = new double[samples * c];
        for (int start = 0; start < samples; start += BatchRows)
        {
            int rows = Math.Min(BatchRows, samples - start);
            // z[start:start+rows] = forward(x[start:start+rows])   (rows, D) -> (rows, C)
            _model.Outputs(parameters, inputs.Slice(start * d, rows * d), rows, z.AsSpan(start * c, rows * c));
        }
        var classes = new int[samples];
        for (int r = 0; r < samples; r++) classes[r] = TensorPrimitives.IndexOfMax<double>(z.AsSpan(r * c, c));
        bool probabilities = Model.Loss == LossKind.CrossEntropy;
        if (probabilities)
            for (int r = 0; r < samples; r++) Softmax(z.AsSpan(r * c, c));
        return new Predictions(samples, c, classes, z, probabilities);
    }

    /// <summary>softmax(z) in place: e_k = exp(z_k - max z), then e_k / Σ e (every exponent ≤ 0, so no overflow).</summary>
    private static void Softmax(Span<double> z)
    {
        TensorPrimitives.Subtract(z, TensorPrimitives.Max<double>(z), z);
        TensorPrimitives.Exp<double>(z, z);
        double sum = 0;
        foreach (double e in z) sum += e;
        TensorPrimitives.Divide(z, sum, z);
    }
}
