using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.TestingHost;
using Trainer.Abstractions;
using Trainer.Core.Training;
using Trainer.Grains;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A step whose code throws a bug fails its job at once: no checkpoint replay (which would throw the
/// same again for minutes), the exception's type and stack in the silo log, its message in the
/// job's status. A data-parallel job keeps the loss of every step before the bug; a split job's
/// window fails as a whole. The bug is injected where the step code runs: on worker 1's silo, in the call that
/// runs its step (a data-parallel shard step) or its window of steps (a split job).
/// </summary>
public sealed class JobFailureTests
{
    private const int BuggyStep = 30;
    private const string Bug = "injected: the step's code indexed past its buffer";
    // Far below the recovery budget (3 min) a replayed bug would take; generous for a loaded 2-core machine.
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(20);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(Parallelism.Data)]
    [InlineData(Parallelism.SplitFirstLayer)]
    public async Task AStepThatThrowsABug_FailsTheJobAtOnce_WithTheErrorInItsStatus_AndTheStackInTheLog(Parallelism parallelism)
    {
        var log = new LogCapture();
        await using var cluster = await StartAsync(log);
        // Checkpoints every 10 steps end the parameter server's batches and a split job's windows there.
        var spec = Jobs.Small(workers: 3, steps: 2000) with { Parallelism = parallelism, CheckpointEvery = 10, CheckpointMinSeconds = 0 };

        var clock = Stopwatch.StartNew();
        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token);
        clock.Stop();
        TestContext.Current.TestOutputHelper?.WriteLine($"{parallelism}: {status.State} after {losses.Length} steps, {clock.Elapsed.TotalSeconds:F2} s from submission: {status.Message}");

        Assert.True(status.State == JobState.Failed, $"{status.State}: {status.Message}");
        Assert.True(clock.Elapsed < Promptly, $"the job took {clock.Elapsed.TotalSeconds:F1} s to fail");
        if (parallelism == Parallelism.Data) Assert.Equal(BuggyStep - 1, losses.Length);
        else Assert.InRange(losses.Length, 1, BuggyStep - 1);
        Assert.Contains($"failed in the steps from {losses.Length + 1}:", status.Message);
        Assert.Contains($"IndexOutOfRangeException: {Bug}", status.Message);
        Assert.Contains("not retried", status.Message);
        // The job grain's error line carries the whole exception: its type and the stack where it was thrown.
        var error = Assert.Single(log.Lines, l => l.StartsWith($"Job {id}: ", StringComparison.Ordinal) && l.Contains("no replay can fix"));
        Assert.Contains($"System.IndexOutOfRangeException: {Bug}", error);
        Assert.Contains(nameof(BuggyWorkerStep), error);
        Assert.DoesNotContain(log.Lines, l => l.Contains($"Job {id}: ") && l.Contains("restoring the checkpoint"));
    }

    /// <summary>Throws <see cref="Bug"/> in worker 1's call for step <see cref="BuggyStep"/> (or a window from there on), on its silo.</summary>
    private static async Task BuggyWorkerStep(IIncomingGrainCallContext context)
    {
        int? step = context.Request.GetArgumentCount() == 1 ? context.Request.GetArgument(0) switch
        {
            WorkRequest request => request.Step,
            LinkedRun run => run.FirstStep + run.Steps - 1,
            _ => null,
        } : null;
        if (step >= BuggyStep && context.TargetId.TryGetIntegerKey(out long rank, out _) && rank == 1)
            throw new IndexOutOfRangeException(Bug);
        await context.Invoke();
    }

    private static async Task<InProcessTestCluster> StartAsync(LogCapture log)
    {
        var builder = new InProcessTestClusterBuilder(3);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer();
            silo.AddIncomingGrainCallFilter(BuggyWorkerStep);
            // The bug is injected into the call that runs a step through Orleans messages (ServerRunnerTests has it over links).
            // Batches end only at the checkpoints (every 10 steps), not after a window of time: the bug's
            // batch always holds steps before the bug, whose losses the job must keep.
            silo.Services.Configure<TrainerOptions>(o => (o.DataPlane, o.StepBatchWindow) = (DataPlane.Messages, TimeSpan.FromMinutes(1)));
            silo.Services.AddSingleton<ILoggerProvider>(log);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }
}
