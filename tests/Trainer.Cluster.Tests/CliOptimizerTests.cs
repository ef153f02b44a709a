using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `--optimizer`, its hyper-parameters and `--lr-schedule` fill the job's OptimizerSpec, and the
/// CLI's default parallelism is data. Parsing only: nothing here trains.
/// </summary>
public sealed class CliOptimizerTests
{
    [Fact]
    public async Task AnOptionTheRuleDoesNotUse_GetsANote_PyTorchsSgdMomentumAmongThem()
    {
        var (code, _, err) = await Cli.RunAsync("train", "--steps", "1", "--momentum", "0.9", "--beta1", "0.8", "--lr-gamma", "0.5", "--progress", "plain");

        Assert.True(code == 0, err);
        Assert.Contains("trainer: note: --optimizer sgd with --lr-schedule constant does not use --momentum 0.9 (only --optimizer momentum and nesterov use it; "
            + "PyTorch's SGD(momentum=μ) is --optimizer momentum); nor --beta1 0.8 (only --optimizer adam and adamw use it); nor --lr-gamma 0.5 (only --lr-schedule step uses it)", err);
        (code, _, err) = await Cli.RunAsync("train", "--steps", "1", "--optimizer", "nesterov", "--momentum", "0.9", "--lr-schedule", "step", "--lr-gamma", "0.5", "--progress", "plain");
        Assert.True(code == 0, err);
        Assert.DoesNotContain("note", err);
    }

    [Fact]
    public void WithoutOptimizerOptions_TheJobIsPlainSgdAtAConstantRate_DataParallel()
    {
        var spec = Cli.Submission().Spec;

        Assert.Equal(OptimizerSpec.Sgd, spec.Optimizer);
        Assert.Equal(Parallelism.Data, spec.Parallelism);
    }

    [Fact]
    public void EveryOptimizerOption_FillsItsFieldOfTheSpec()
    {
        var spec = Cli.Submission("--optimizer", "adamw", "--momentum", "0.8", "--beta1", "0.85", "--beta2", "0.99", "--eps", "1e-6",
            "--weight-decay", "0.01", "--lr-schedule", "step", "--warmup-steps", "20", "--lr-step-every", "100", "--lr-gamma", "0.5", "--steps", "500").Spec;

        var expected = new OptimizerSpec
        {
            Kind = OptimizerKind.AdamW, Momentum = 0.8, Beta1 = 0.85, Beta2 = 0.99, Eps = 1e-6,
            WeightDecay = 0.01, Schedule = ScheduleKind.Step, WarmupSteps = 20, StepEvery = 100, Gamma = 0.5,
        };
        Assert.Equal(expected, spec.Optimizer);
    }

    [Theory]
    [InlineData("data", Parallelism.Data)]
    [InlineData("split", Parallelism.SplitFirstLayer)]
    [InlineData("auto", Parallelism.SplitFirstLayer)]  // auto still picks the split for the seed's model
    public void ParallelData_Split_AndAuto_StayAccepted(string value, Parallelism expected)
        => Assert.Equal(expected, Cli.Submission("--parallel", value).Spec.Parallelism);

    [Fact]
    public async Task Submit_TakesTheOptimizerOptions_AndRejectsABadOneBeforeAnyCluster()
    {
        var (code, _, err) = await Cli.RunAsync("submit", "--optimizer", "rmsprop", "--gateway", "127.0.0.1:1");

        Assert.Equal(2, code);
        Assert.Contains("optimizer: 'rmsprop' is not allowed; allowed: sgd, momentum, nesterov, adam, adamw.", err);
    }
}
