using Spectre.Console.Testing;
using Trainer.Client;

namespace Trainer.Cluster.Tests;

/// <summary>The live display on a terminal (Spectre.Console's test console): what it shows of the latest step.</summary>
public sealed class LiveProgressTests
{
    [Fact]
    public async Task TheBar_ShowsTheLatestStepsLossRateElapsedAndEta()
    {
        var console = new TestConsole().Interactive().Width(120);
        var live = new LiveProgress(console);

        int result = await live.ShowWhileAsync(() =>
        {
            live.Report(new StepProgress(1, 10, 2.5, TimeSpan.FromSeconds(0.5), 2.0));
            live.Report(new StepProgress(4, 10, 0.125, TimeSpan.FromSeconds(2), 2.0));
            return Task.FromResult(7);
        });

        Assert.Equal(7, result);
        var last = console.Lines.Last(l => l.Trim().Length > 0);
        Assert.Contains(" 40% step 4/10  loss 0.125  2.0 steps/s  elapsed 0:00:02  ETA 0:00:03", last);
    }

    [Theory]
    [InlineData(80, " 40% step 4/10  loss 0.125  elapsed 0:00:02  ETA 0:00:03")]
    [InlineData(60, " 40% step 4/10  loss 0.125  ETA 0:00:03")]
    public async Task OnANarrowTerminal_TheBarKeepsToOneLine_DroppingTheRateAndThenTheElapsedTime(int width, string expected)
    {
        var console = new TestConsole().Interactive().Width(width);
        var live = new LiveProgress(console);

        await live.ShowWhileAsync(() =>
        {
            live.Report(new StepProgress(4, 10, 0.125, TimeSpan.FromSeconds(2), 2.0));
            return Task.FromResult(0);
        });

        var lines = console.Lines.Where(l => l.Trim().Length > 0).ToArray();
        Assert.Single(lines);
        Assert.EndsWith(expected, lines[0].TrimEnd());
        Assert.True(lines[0].TrimEnd().Length <= width, lines[0]);
    }

    [Fact]
    public void AtTheLeastWidth_TheLineKeepsEpochStepLossAndEta_CutAtTheWidth()
    {
        var progress = new StepProgress(6, 10, 0.25, TimeSpan.FromSeconds(2), 3.0) { Epoch = 2, TotalEpochs = 5, Accuracy = 0.9375, ValidationAccuracy = 0.9 };
        Assert.Equal("epoch 2/5  step 6/10  loss 0.25  ETA 0:00:01", LiveProgress.Describe(progress, 45));
        Assert.Equal("epoch 2/5  step 6/10", LiveProgress.Describe(progress, 20));
    }

    [Fact]
    public void EpochAndAccuracy_AreShownWhenKnown()
    {
        var progress = new StepProgress(6, 10, 0.25, TimeSpan.FromSeconds(2), 3.0) { Epoch = 2, TotalEpochs = 5, Accuracy = 0.9375 };

        Assert.Equal("epoch 2/5  step 6/10  loss 0.25  accuracy 0.9375  3.0 steps/s  elapsed 0:00:02  ETA 0:00:01", LiveProgress.Describe(progress));
    }

    [Fact]
    public void BeforeTheJobHasATrainingTime_TheEtaIsUnknown()
    {
        Assert.Equal("step 1/3000  loss 88.1  0.0 steps/s  elapsed 0:00:00  ETA --:--", LiveProgress.Describe(new StepProgress(1, 3000, 88.1, TimeSpan.Zero, 0)));
    }

    [Fact]
    public void LongJobs_CountHoursPastADay()
    {
        var progress = new StepProgress(100, 1_000_000, 1.5, TimeSpan.FromHours(30) + TimeSpan.FromSeconds(59.6), 0.01);

        Assert.Equal("step 100/1000000  loss 1.5  0.0 steps/s  elapsed 30:01:00  ETA 27775:00:00", LiveProgress.Describe(progress));
    }
}
