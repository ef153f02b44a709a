using Trainer.Core.Training;

namespace Trainer.Core.Tests.Validation;

/// <summary>Early stopping as PyTorch Lightning's EarlyStopping(patience=P, min_delta=0) counts: only a strictly lower loss improves.</summary>
public sealed class EarlyStoppingTests
{
    /// <summary>The evaluations' losses in order, fed one after another; the state after each.</summary>
    private static EarlyStopping[] Run(int patience, params double[] losses)
    {
        var states = new EarlyStopping[losses.Length];
        var state = EarlyStopping.Start(patience);
        for (int i = 0; i < losses.Length; i++) states[i] = state = state.After(step: 10 * (i + 1), losses[i]);
        return states;
    }

    [Fact]
    public void TheJobStops_AtThePatienceThEvaluationInARow_ThatDidNotLowerTheBestLoss()
    {
        // The best is 3.0 after step 50; 3.5, 3.2 and 3.1 do not beat it, so the third of them stops the job.
        var states = Run(3, 5.0, 4.0, 4.5, 4.2, 3.0, 3.5, 3.2, 3.1);

        Assert.Equal([false, false, false, false, false, false, false, true], states.Select(s => s.Stopped));
        Assert.Equal((50, 3.0, 3), (states[^1].BestStep, states[^1].BestLoss, states[^1].Since));
        // 4.5 and 4.2 were two without improvement; 3.0 reset the count.
        Assert.Equal(2, states[3].Since);
        Assert.Equal(0, states[4].Since);
    }

    [Fact]
    public void AnEqualLoss_DoesNotImprove()
    {
        var states = Run(2, 1.0, 1.0, 1.0);

        Assert.Equal(10, states[^1].BestStep);
        Assert.Equal([false, false, true], states.Select(s => s.Stopped));
    }

    [Fact]
    public void ANaNLoss_NeverImproves_NorBecomesTheBest()
    {
        var states = Run(5, double.NaN, 2.0, double.NaN);

        Assert.Equal(0, states[0].BestStep);
        Assert.Equal((20, 2.0, 1), (states[^1].BestStep, states[^1].BestLoss, states[^1].Since));
    }

    [Fact]
    public void APatienceOfOne_StopsAtTheFirstEvaluationThatIsNotBetter()
    {
        var states = Run(1, 3.0, 2.0, 2.5);

        Assert.Equal([false, false, true], states.Select(s => s.Stopped));
        Assert.Equal(20, states[^1].BestStep);
    }
}
