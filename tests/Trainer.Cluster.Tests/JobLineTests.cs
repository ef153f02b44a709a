using System.Text.Json;
using Trainer.Abstractions;
using Trainer.Client;

namespace Trainer.Cluster.Tests;

/// <summary>
/// The job line says how the job runs (data parallel, or the first layer split) and which optimizer
/// applies the update where, naming only the hyper-parameters that differ from their defaults;
/// with --json, the final event names the optimizer.
/// </summary>
public sealed class JobLineTests
{
    [Fact]
    public void TheSeedJob_RunsDataParallel_WithSgdOnTheParameterServer()
        => Assert.Equal("1000-100-10 sigmoid sse, 2 workers, batch 64, 3000 steps, lr 1e-05, engine hand, float64, "
            + "data parallel, optimizer sgd on the parameter server; data synthetic N(0,1), seed 0; init normal, seed 0",
            JobLine.Describe(Cli.Submission()));

    [Fact]
    public void Adam_NamesItsChangedHyperParameters_AndTheSchedule()
        => Assert.Equal("data parallel, optimizer adam (beta2 0.99, weight decay 0.01) on the parameter server, lr schedule cosine with 100 warm-up steps",
            JobLine.HowItRuns(Cli.Submission("--optimizer", "adam", "--beta2", "0.99", "--weight-decay", "0.01", "--lr-schedule", "cosine", "--warmup-steps", "100").Spec));

    [Fact]
    public void HyperParametersTheRuleDoesNotUse_AreNotShown()
        => Assert.Equal("data parallel, optimizer sgd on the parameter server",
            JobLine.HowItRuns(Cli.Submission("--momentum", "0.5", "--beta1", "0.5", "--eps", "1e-3", "--lr-gamma", "0.5").Spec));

    [Fact]
    public void ASplitJob_SaysEachWorkerAppliesTheOptimizerToItsSlice()
        => Assert.Equal("first layer split over 2 workers (model parallel; each worker applies the optimizer to its slice), optimizer sgd",
            JobLine.HowItRuns(Cli.Submission("--parallel", "split").Spec));

    [Fact]
    public void ASplitJobWithNesterovAndAStepSchedule_NamesBoth()
        => Assert.Equal("first layer split over 4 workers (model parallel; each worker applies the optimizer to its slice), "
            + "optimizer nesterov (momentum 0.95), lr schedule step (gamma 0.5 every 200 steps)",
            JobLine.HowItRuns(Cli.Submission("--parallel", "split", "--workers", "4", "--optimizer", "nesterov", "--momentum", "0.95",
                "--lr-schedule", "step", "--lr-step-every", "200", "--lr-gamma", "0.5").Spec));

    [Fact]
    public void AShardedParameterServer_SaysOnHowManyShards()
        => Assert.Equal("data parallel, optimizer adam on 3 parameter-server shards",
            JobLine.HowItRuns(Cli.Submission("--optimizer", "adam", "--ps-shards", "3").Spec));

    [Fact]
    public void TheAutomaticShardCount_IsOneShardPer2To24Parameters_ForAnOptimizerWithState_AndOneForSgd()
    {
        // 5000-10000-10: 50.1M parameters, so 3 shards of at most 2^24 for Adam; SGD keeps no state to spread.
        Assert.Equal("data parallel, optimizer adam on 3 parameter-server shards",
            JobLine.HowItRuns(Cli.Submission("--model", "5000-10000-10", "--optimizer", "adam").Spec));
        Assert.Equal("data parallel, optimizer sgd on the parameter server",
            JobLine.HowItRuns(Cli.Submission("--model", "5000-10000-10").Spec));
    }

    [Fact]
    public void AWarmUpAlone_IsAConstantSchedule()
        => Assert.Equal("data parallel, optimizer adamw (eps 1e-06) on the parameter server, lr schedule constant with 1 warm-up step",
            JobLine.HowItRuns(Cli.Submission("--optimizer", "adamw", "--eps", "1e-6", "--warmup-steps", "1").Spec));

    [Fact]
    public void TheJsonCompletedEvent_NamesTheOptimizer_AfterItsExistingFields()
    {
        var spec = Cli.Submission("--optimizer", "adam").Spec;
        var status = new JobStatus("job-1", JobState.Completed, spec, 4, 2.0, 1.5, null, null, null, 2.0, "synthetic", "normal");
        var output = new StringWriter();

        new JobWatcher(output, TextWriter.Null, json: true).WriteOutcome(status);

        var fields = JsonDocument.Parse(output.ToString()).RootElement.EnumerateObject().Select(p => p.Name).ToArray();
        Assert.Equal(["event", "job", "steps", "final_loss", "seconds", "steps_per_second", "optimizer"], fields);
        Assert.Equal("adam", JsonDocument.Parse(output.ToString()).RootElement.GetProperty("optimizer").GetString());
    }

    [Fact]
    public void TheJsonCompletedEvent_NamesTheJobsGemmKernel_AfterItsOptimizer()
    {
        var spec = Cli.Submission("--optimizer", "adam").Spec with { Gemm = "openblas 0.3.21 Haswell" };
        var status = new JobStatus("job-1", JobState.Completed, spec, 4, 2.0, 1.5, null, null, null, 2.0, "synthetic", "normal");
        var output = new StringWriter();

        new JobWatcher(output, TextWriter.Null, json: true).WriteOutcome(status);

        var completed = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.Equal(["event", "job", "steps", "final_loss", "seconds", "steps_per_second", "optimizer", "gemm"], completed.EnumerateObject().Select(p => p.Name));
        Assert.Equal("openblas 0.3.21 Haswell", completed.GetProperty("gemm").GetString());
    }
}
