using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests.Validation;

/// <summary>
/// The held-out sets a job scores: the validation rows, then the test rows, each as <see cref="Evaluation"/>
/// scores it alone; early stopping follows the validation loss and keeps the parameters of the lowest.
/// </summary>
public sealed class HeldOutEvaluationTests
{
    private static readonly ModelSpec Model = new([6, 5, 3], Activation.Tanh, LossKind.CrossEntropy, bias: true);
    private static int Count => ParameterLayout.For(Model).Count;

    /// <summary>7 validation rows, then 5 test rows, with one-hot targets.</summary>
    private static Dataset HeldOut() => new(TestArrays.Normal(12 * 6, seed: 1), TestArrays.OneHot(12, 3, seed: 2), 12, 6, 3);

    private static TrainingSpec Spec(int patience) => new()
    {
        Model = Model, Batch = 10, Samples = 40, ValidationSamples = 7, TestSamples = 5, EarlyStopping = patience,
    };

    [Fact]
    public void EachEvaluation_ScoresTheValidationRowsThenTheTestRows_AsEvaluationScoresEachAlone()
    {
        var heldOut = HeldOut();
        var parameters = TestArrays.Normal(Count, seed: 3, std: 0.5);

        var scores = new HeldOutEvaluation(Spec(patience: 0), heldOut).Score(step: 4, parameters);

        var evaluation = new Evaluation(Model);
        Assert.Equal(["val", "test"], scores.Select(s => s.Split));
        Assert.Equal(evaluation.Evaluate(parameters, heldOut.Slice(new Shard(0, 0, 7))), scores[0].Result);
        Assert.Equal(evaluation.Evaluate(parameters, heldOut.Slice(new Shard(0, 7, 5))), scores[1].Result);
        Assert.Equal(scores[1].Result.Accuracy, scores[1].Accuracy);
    }

    [Fact]
    public void EarlyStopping_KeepsACopyOfTheParametersWithTheLowestValidationLoss_AndStopsAfterPatienceWorse()
    {
        var heldOut = HeldOut();
        var scoring = new HeldOutEvaluation(Spec(patience: 2), heldOut);
        var validation = heldOut.Slice(new Shard(0, 0, 7));
        // Five candidate parameter vectors, scored as after steps 10, 20, ...
        var candidates = Enumerable.Range(0, 5).Select(i => TestArrays.Normal(Count, seed: 10 + i, std: 0.7)).ToArray();
        var losses = candidates.Select(p => new Evaluation(Model).Evaluate(p, validation).Loss).ToArray();

        int stoppedAt = 0;
        for (int i = 0; i < candidates.Length && !scoring.Stopped; i++)
        {
            var parameters = (double[])candidates[i].Clone();
            scoring.Score(10 * (i + 1), parameters);
            parameters.AsSpan().Clear();   // the caller's buffer changes; the kept copy must not
            stoppedAt = 10 * (i + 1);
        }

        // The reference: the first strictly lowest loss, and stop at the second evaluation in a row above it.
        int best = 0, since = 0, expectedStop = 0;
        for (int i = 0; i < losses.Length; i++)
        {
            if (losses[i] < losses[best] || i == 0) (best, since) = (i, 0);
            else since++;
            expectedStop = 10 * (i + 1);
            if (since == 2) break;
        }
        Assert.Equal(10 * (best + 1), scoring.Stopping!.BestStep);
        Assert.Equal(losses[best], scoring.Stopping.BestLoss);
        Assert.Equal(candidates[best], scoring.Best);
        Assert.Equal(expectedStop, stoppedAt);
        Assert.Equal(since == 2, scoring.Stopped);
    }

    [Fact]
    public async Task ScoringOnSeveralThreads_GivesTheBitsAndTheEarlyStoppingOfOneThread()
    {
        // Sets of several forward passes each (Evaluation's 1024 rows), so the threads share them out.
        var heldOut = new Dataset(TestArrays.Normal(4600 * 6, seed: 1), TestArrays.OneHot(4600, 3, seed: 2), 4600, 6, 3);
        var spec = Spec(patience: 2) with { ValidationSamples = 2500, TestSamples = 2100 };
        var one = new HeldOutEvaluation(spec, heldOut);
        var many = new HeldOutEvaluation(spec, heldOut);

        for (int i = 0; i < 5 && !one.Stopped; i++)
        {
            var parameters = TestArrays.Normal(Count, seed: 10 + i, std: 0.7);
            var expected = one.Score(10 * (i + 1), parameters);
            var scores = await many.ScoreAsync(10 * (i + 1), parameters, threads: 3, Task.Run);

            Assert.Equal(expected.Select(s => (s.Split, BitConverter.DoubleToInt64Bits(s.Result.Loss), s.Result.Correct)),
                scores.Select(s => (s.Split, BitConverter.DoubleToInt64Bits(s.Result.Loss), s.Result.Correct)));
            Assert.Equal(one.Stopping, many.Stopping);
            Assert.Equal(one.Best, many.Best);
        }
    }

    [Fact]
    public void ARestoredState_CarriesOn_WithItsBestParameters()
    {
        var best = TestArrays.Normal(Count, seed: 5);
        var restored = new EarlyStopping(Patience: 1, BestStep: 30, BestLoss: double.MinValue, Since: 0);

        var scoring = new HeldOutEvaluation(Spec(patience: 1), HeldOut(), restored, best);
        scoring.Score(40, TestArrays.Normal(Count, seed: 6));

        // Nothing beats the restored best: one evaluation without improvement stops the job, keeping step 30's parameters.
        Assert.True(scoring.Stopped);
        Assert.Equal((30, 1), (scoring.Stopping!.BestStep, scoring.Stopping.Since));
        Assert.Same(best, scoring.Best);
    }

    [Fact]
    public void ABestStepWithoutItsParameters_IsRefused()
    {
        var restored = new EarlyStopping(Patience: 2, BestStep: 30, BestLoss: 0.5, Since: 1);

        Assert.Throws<ArgumentException>(() => new HeldOutEvaluation(Spec(patience: 2), HeldOut(), restored, best: null));
        Assert.Throws<ArgumentException>(() => new HeldOutEvaluation(Spec(patience: 2), HeldOut(), EarlyStopping.Start(2), TestArrays.Normal(Count, seed: 1)));
    }

    [Fact]
    public void RegressionTargets_HaveNoAccuracy_ClassTargetsDo()
    {
        var spec = Spec(patience: 0) with { Model = new ModelSpec([6, 5, 3], Activation.Tanh, LossKind.Mse) };
        var regression = new Dataset(TestArrays.Normal(12 * 6, seed: 1), TestArrays.Normal(12 * 3, seed: 2), 12, 6, 3);
        var parameters = TestArrays.Normal(ParameterLayout.For(spec.Model).Count, seed: 3);

        Assert.All(new HeldOutEvaluation(spec, regression).Score(1, parameters), s => Assert.True(double.IsNaN(s.Accuracy)));
        // One-hot targets are classes with any loss.
        Assert.All(new HeldOutEvaluation(spec, HeldOut()).Score(1, parameters), s => Assert.True(double.IsFinite(s.Accuracy)));
    }
}
