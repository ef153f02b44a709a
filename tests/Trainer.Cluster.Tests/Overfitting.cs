using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A job built to overfit, for validation and early stopping: a few training rows whose labels are a
/// linear teacher's argmax with a third of them flipped, and clean validation and test rows of the
/// same teacher. The validation loss falls while the job learns the teacher, then rises as it learns
/// the flipped labels. <see cref="Reference"/> is the single-process run of such a job, scored and
/// stopped by a loop written here (not <see cref="HeldOutEvaluation"/>), which the cluster must match to the bit.
/// </summary>
internal static class Overfitting
{
    /// <summary>The rows as a job uploads them: <paramref name="training"/>, then <paramref name="validation"/>, then <paramref name="test"/>.</summary>
    public static Dataset Rows(int inputs, int classes, int training, int validation, int test, int seed)
    {
        int count = training + validation + test;
        var x = Synthetic.Data(count, inputs, 1, seed).X;
        var teacher = new double[inputs * classes];
        Synthetic.Normals(teacher, seed + 1, std: 1);
        var y = new double[count * classes];
        for (int r = 0; r < count; r++)
        {
            var scores = Enumerable.Range(0, classes).Select(c => Enumerable.Range(0, inputs).Sum(i => x[r * inputs + i] * teacher[i * classes + c])).ToArray();
            int label = Array.IndexOf(scores, scores.Max());
            if (r < training && r % 3 == 0) label = (label + 1) % classes;
            y[r * classes + label] = 1;
        }
        return new Dataset(x, y, count, inputs, classes);
    }

    public static JobSubmission Submission(TrainingSpec spec, Dataset rows) => Jobs.Synthetic(spec) with
    {
        Data = new DatasetPayload(rows.Count, rows.InputSize, rows.OutputSize, TensorPayload.From(rows.X), TensorPayload.From(rows.Y)),
        DataDescription = "uploaded",
    };

    /// <summary>What the single-process run of <paramref name="spec"/> on <paramref name="rows"/> gives.</summary>
    /// <param name="Losses">Every step's loss, up to the step the job stops at.</param>
    /// <param name="Evals">Every evaluation: validation then test after each step that scores.</param>
    /// <param name="Final">The job's final weights: the best step's with early stopping, else the last step's.</param>
    /// <param name="Stopping">Early stopping after the last evaluation; null without it.</param>
    public sealed record Run(double[] Losses, EvalRecord[] Evals, double[] Final, EarlyStopping? Stopping);

    public static Run Reference(TrainingSpec spec, Dataset rows)
    {
        var training = rows.Take(spec.ResolvedSamples);
        var validation = spec.ValidationSamples == 0 ? null : rows.Slice(new Shard(0, spec.ResolvedSamples, spec.ValidationSamples));
        var test = spec.TestSamples == 0 ? null : rows.Slice(new Shard(0, spec.ResolvedSamples + spec.ValidationSamples, spec.TestSamples));
        var trainer = new LocalTrainer(spec, training, Initializer.Create(ParameterLayout.For(spec.Model), spec.Init, spec.Seed));
        var evaluation = new Evaluation(spec.Model);
        var losses = new List<double>();
        var evals = new List<EvalRecord>();
        // Early stopping written out: the first strictly lowest validation loss, and how many did not beat it since.
        int bestStep = 0, since = 0;
        double bestLoss = double.PositiveInfinity;
        double[]? best = null;
        for (int step = 1; step <= spec.Steps; step++)
        {
            losses.Add(trainer.Step());
            if (!spec.EvaluatesAfter(step)) continue;
            int epoch = spec.Schedule().EpochOf(step);
            if (validation is not null)
            {
                var score = evaluation.Evaluate(trainer.Parameters, validation);
                evals.Add(new EvalRecord(step, epoch, "val", score.Samples, score.Loss, score.Accuracy));
                if (score.Loss < bestLoss) (bestStep, bestLoss, since, best) = (step, score.Loss, 0, (double[])trainer.Parameters.Clone());
                else since++;
            }
            if (test is not null)
            {
                var score = evaluation.Evaluate(trainer.Parameters, test);
                evals.Add(new EvalRecord(step, epoch, "test", score.Samples, score.Loss, score.Accuracy));
            }
            if (spec.EarlyStopping > 0 && since == spec.EarlyStopping) break;
        }
        return spec.EarlyStopping == 0
            ? new Run([.. losses], [.. evals], trainer.Parameters, null)
            : new Run([.. losses], [.. evals], best!, new EarlyStopping(spec.EarlyStopping, bestStep, bestLoss, since));
    }
}
