using Trainer.Abstractions;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// The silo's timeouts nest (docs/operations.md, "Timeouts"): a hung link peer fails its window
/// before the call running it times out, and the parameter server's retries of a worker end before
/// the job's call to it does. A silo refuses to start with settings that break the nesting.
/// </summary>
public sealed class TimeoutHierarchyTests
{
    [Fact]
    public void TheDefaults_Nest()
    {
        var o = new TrainerOptions();

        Assert.True(Validate(o).Succeeded, Validate(o).FailureMessage);
        Assert.True(o.LinkReadTimeout < o.SplitLinkTimeout && o.SplitLinkTimeout < o.WorkerCallTimeout, "link read < link setup < worker call");
        Assert.True(2 * o.WorkerProbeInterval < o.WorkerCallTimeout, "a lost call is found (two probes) before the call times out");
        Assert.True(o.WorkerCallTimeout < o.RecoveryBudget && o.RecoveryBudget < CallTimeouts.LongSpan, "worker call < recovery budget < the job's call to its parameter server");
        Assert.True(o.WorkerRetryBudget + o.WorkerCallTimeout < CallTimeouts.LongSpan, "a worker's retries end before the job's call to its parameter server times out");
    }

    [Fact]
    public void ALinkReadTimeoutNotBelowTheWorkerCallTimeout_IsRefused_NamingBothSettings()
    {
        var result = Validate(new TrainerOptions { LinkReadTimeout = TimeSpan.FromMinutes(2), WorkerCallTimeout = TimeSpan.FromMinutes(2) });

        Assert.False(result.Succeeded);
        Assert.Contains("Trainer:LinkReadTimeout (00:02:00) must be below Trainer:WorkerCallTimeout (00:02:00)", result.FailureMessage);
    }

    [Fact]
    public void AProbeIntervalNotBelowTheWorkerCallTimeout_IsRefused_NamingBothSettings()
    {
        var result = Validate(new TrainerOptions { WorkerProbeInterval = TimeSpan.FromMinutes(3) });

        Assert.False(result.Succeeded);
        Assert.Contains("Trainer:WorkerProbeInterval (00:03:00) must be below Trainer:WorkerCallTimeout (00:02:00)", result.FailureMessage);
    }

    [Fact]
    public void WorkerRetriesThatOutlastTheJobsCallToItsParameterServer_AreRefused()
    {
        var result = Validate(new TrainerOptions { WorkerRetryBudget = TimeSpan.FromMinutes(6), WorkerCallTimeout = TimeSpan.FromMinutes(5) });

        Assert.False(result.Succeeded);
        Assert.Contains("Trainer:WorkerRetryBudget (00:06:00) + Trainer:WorkerCallTimeout (00:05:00) must stay below 00:10:00", result.FailureMessage);
    }

    [Fact]
    public void ATimeoutOfZero_IsRefused_NamingTheSetting()
    {
        var result = Validate(new TrainerOptions { RecoveryBudget = TimeSpan.Zero });

        Assert.False(result.Succeeded);
        Assert.Contains("Trainer:RecoveryBudget is 00:00:00; it must be a positive time span", result.FailureMessage);
    }

    private static Microsoft.Extensions.Options.ValidateOptionsResult Validate(TrainerOptions options) =>
        new TrainerOptionsValidation().Validate(null, options);
}
