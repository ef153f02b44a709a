using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;

namespace Trainer.Core.Training;

/// <summary>One held-out set's score of a job's parameters: <see cref="Split"/> is "val" or "test"; <see cref="Classes"/>: whether its targets are classes.</summary>
public sealed record SplitScore(string Split, EvaluationResult Result, bool Classes)
{
    /// <summary>The fraction classified right for class targets; NaN for regression targets, where an argmax means nothing (as `trainer evaluate` says).</summary>
    public double Accuracy => Classes ? Result.Accuracy : double.NaN;
}

/// <summary>
/// What a job scores its parameters on after each step <see cref="TrainingSpec.EvaluatesAfter"/>
/// names: its validation set, then its test set (either may be absent), with one
/// <see cref="Evaluation"/>. With early stopping (<see cref="TrainingSpec.EarlyStopping"/>) each
/// validation loss steps an <see cref="Training.EarlyStopping"/>, and the parameters of the lowest are
/// kept (<see cref="Best"/>). The parameter server runs it, and so does the single-process reference,
/// so the two agree to the bit. Not thread-safe.
/// </summary>
public sealed class HeldOutEvaluation
{
    /// <summary>The splits' names, as eval events and records spell them.</summary>
    public const string ValidationSplit = "val", TestSplit = "test";

    private readonly Evaluation _evaluation;
    private readonly ISampleRows? _validation, _test;
    // Whether each set's targets are classes: with ce, or one-hot rows with any loss.
    private readonly bool _validationClasses, _testClasses;

    /// <param name="heldOut">The job's held-out rows, <see cref="TrainingSpec.HeldOutSamples"/> of them: its validation rows, then its test rows.</param>
    /// <param name="stopping">Early stopping's state to continue from (a restored checkpoint's); null: before the first evaluation.</param>
    /// <param name="best">The parameters after <paramref name="stopping"/>'s best step (null while it has none).</param>
    public HeldOutEvaluation(TrainingSpec spec, ISampleRows heldOut, EarlyStopping? stopping = null, double[]? best = null)
    {
        ArgumentNullException.ThrowIfNull(heldOut);
        if (heldOut.Count != spec.HeldOutSamples)
            throw new ArgumentException($"The spec holds out {spec.ValidationSamples} validation and {spec.TestSamples} test rows; {heldOut.Count} were given.", nameof(heldOut));
        if (spec.EarlyStopping == 0 && stopping is not null)
            throw new ArgumentException("Early stopping's state was given for a job without early stopping.", nameof(stopping));
        int count = ParameterLayout.For(spec.Model).Count;
        // NOTE: a best step without its parameters (a checkpoint that lost them) would end the job with the wrong weights.
        if ((best is not null) != (stopping is { BestStep: > 0 }) || best is not null && best.Length != count)
            throw new ArgumentException($"The best parameters ({best?.Length.ToString() ?? "none"}; the model has {count}) must come with an early-stopping state with a best step, and only with one.", nameof(best));
        _evaluation = new Evaluation(spec.Model, blas: Blas.For(spec.Gemm));
        _validation = spec.ValidationSamples > 0 ? Part(heldOut, 0, spec.ValidationSamples) : null;
        _test = spec.TestSamples > 0 ? Part(heldOut, spec.ValidationSamples, spec.TestSamples) : null;
        _validationClasses = _validation is not null && Classes(spec, _validation);
        _testClasses = _test is not null && Classes(spec, _test);
        Stopping = spec.EarlyStopping > 0 ? stopping ?? EarlyStopping.Start(spec.EarlyStopping) : null;
        Best = best;
    }

    /// <summary>Early stopping after the evaluations so far; null for a job without it.</summary>
    public EarlyStopping? Stopping { get; private set; }

    /// <summary>
    /// The parameters after <see cref="Stopping"/>'s best step; null until the first validation. A new
    /// array at each improvement, never changed afterwards, so it can be handed out as it is.
    /// </summary>
    public double[]? Best { get; private set; }

    /// <summary>Whether early stopping says the job stops here.</summary>
    public bool Stopped => Stopping is { Stopped: true };

    /// <summary>Scores the parameters after step <paramref name="step"/>: the validation set (stepping early stopping), then the test set.</summary>
    public IReadOnlyList<SplitScore> Score(int step, ReadOnlySpan<double> parameters)
    {
        var validation = _validation is null ? null : _evaluation.Evaluate(parameters, _validation);
        if (validation is not null) Judge(step, validation, parameters);
        return Scores(validation, _test is null ? null : _evaluation.Evaluate(parameters, _test));
    }

    /// <summary>
    /// <see cref="Score"/>, to the bit, with each set's batches scored on up to <paramref name="threads"/>
    /// threads that <paramref name="run"/> starts (<see cref="Evaluation.EvaluateAsync"/>).
    /// </summary>
    public async Task<IReadOnlyList<SplitScore>> ScoreAsync(int step, double[] parameters, int threads, Func<Action, Task> run)
    {
        var validation = _validation is null ? null : await _evaluation.EvaluateAsync(parameters, _validation, threads, run);
        if (validation is not null) Judge(step, validation, parameters);
        return Scores(validation, _test is null ? null : await _evaluation.EvaluateAsync(parameters, _test, threads, run));
    }

    // Early stopping takes the validation loss; the parameters of the best are kept.
    private void Judge(int step, EvaluationResult validation, ReadOnlySpan<double> parameters)
    {
        if (Stopping is not { } stopping) return;
        Stopping = stopping.After(step, validation.Loss);
        if (Stopping.BestStep == step) Best = parameters.ToArray();
    }

    private List<SplitScore> Scores(EvaluationResult? validation, EvaluationResult? test)
    {
        var scores = new List<SplitScore>(2);
        if (validation is not null) scores.Add(new SplitScore(ValidationSplit, validation, _validationClasses));
        if (test is not null) scores.Add(new SplitScore(TestSplit, test, _testClasses));
        return scores;
    }

    // Arrays in memory are copied into a set of their own, which Evaluation reads in place; other rows
    // (files a silo maps) are viewed where they lie and read a batch at a time.
    private static ISampleRows Part(ISampleRows rows, int first, int count) =>
        rows is Dataset data ? data.Slice(new Shard(0, first, count)) : rows.Range(first, count);

    private static bool Classes(TrainingSpec spec, ISampleRows set) =>
        spec.Model.Loss == LossKind.CrossEntropy || Labels.AreOneHot(set.Targets(), set.OutputSize);
}
