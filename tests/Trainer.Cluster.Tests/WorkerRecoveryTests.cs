using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;
using Trainer.Abstractions;
using Trainer.Core.Training;
using Trainer.Grains;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A data-parallel job's parameters live in its parameter server; the workers keep caches. A worker
/// that loses its cache (its activation is gone, as after a crash) is sent the server's parameters at
/// the step it missed, and even losing every worker at once costs no checkpoint replay. A split job's
/// workers own their slices, so losing one restores the checkpoint. Either way the job ends with
/// exactly the undisturbed weights. The silos' log shows which recovery ran, so a test cannot pass without it.
/// </summary>
public sealed class WorkerRecoveryTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(DataPlane.Messages)]
    [InlineData(DataPlane.Links)]
    public async Task AWorkerThatLostItsCache_IsSentTheParameterServersParameters_AndTheJobEndsWithTheUndisturbedWeights(DataPlane plane)
    {
        var log = new LogCapture(LogLevel.Information);
        await using var cluster = await StartAsync(log, plane: plane);
        // Long enough that batches of steps still follow the recovery however late the release lands (the
        // worker is released once step 100 is seen): the next batch links the worker again.
        var spec = Jobs.Small(workers: 3, steps: 3000) with { CheckpointEvery = 1000 };
        var expected = Jobs.Local(spec);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token,
            afterSubmit: (job, jobId) => ReleaseWorkersAfterAsync(cluster, job, jobId, 100, ranks: [1]));

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
        Assert.Contains(log.Lines, l => l.Contains($"Job {id} step") && l.Contains("worker 1 holds no parameters; it is sent the parameter server's"));
        Assert.DoesNotContain(log.Lines, l => l.Contains($"Job {id}: ") && l.Contains("restoring the checkpoint"));
        if (plane == DataPlane.Links)
        {
            // The run over links broke with the worker, the next step went through Orleans, and a new run started after it.
            Assert.Contains(log.Lines, l => l.StartsWith($"Job {id}: the run over links broke at step ", StringComparison.Ordinal));
            // Whole lines, so that a failure shows why the link failed.
            string[] unlinked = [.. log.Lines.Where(l => l.StartsWith($"Job {id}: the workers could not be linked", StringComparison.Ordinal))];
            Assert.True(unlinked.Length == 0, string.Join('\n', unlinked));
            Assert.True(log.Lines.Count(l => l.StartsWith($"Worker 1 of job {id} takes its steps over a link", StringComparison.Ordinal)) >= 2, "worker 1 did not take its steps over links again after it was re-activated");
        }
    }

    [Fact]
    public async Task AWorkerThatLeavesAStepTeam_IsSentTheParameters_AndANewTeamForms_AndTheJobEndsWithTheUndisturbedWeights()
    {
        var log = new LogCapture(LogLevel.Information);
        // One silo, the trainer's defaults: the workers form a step team with the parameter server.
        await using var cluster = await StartAsync(log, silos: 1, plane: DataPlane.Auto, exchange: ExchangeMode.Auto);
        // A team takes this model's steps in microseconds: long enough that the release (once step 100 is
        // seen) lands while the team still trains, however late it comes.
        var spec = Jobs.Small(workers: 2, steps: 30000) with { CheckpointEvery = 10000 };
        var expected = Jobs.Local(spec);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token,
            afterSubmit: (job, jobId) => ReleaseWorkersAfterAsync(cluster, job, jobId, 100, ranks: [1]));

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
        // The team ended with the worker, the next step went through Orleans (the worker was sent the
        // parameters), and a new team formed after it; no checkpoint was restored.
        Assert.Contains(log.Lines, l => l.StartsWith($"Job {id}: the step team broke at step ", StringComparison.Ordinal) && l.Contains("worker 1 left the run"));
        Assert.Contains(log.Lines, l => l.Contains($"Job {id} step") && l.Contains("worker 1 holds no parameters; it is sent the parameter server's"));
        Assert.True(log.Lines.Count(l => l.StartsWith($"Worker 1 of job {id} joins the parameter server's step team", StringComparison.Ordinal)) >= 2, "worker 1 did not join a step team again");
        Assert.DoesNotContain(log.Lines, l => l.Contains($"Job {id}: ") && l.Contains("restoring the checkpoint"));
    }

    [Theory]
    [InlineData(Core.Optim.OptimizerKind.Sgd, 0)]
    [InlineData(Core.Optim.OptimizerKind.Momentum, 0)]
    // The workers read the parameters from the parameter-server shards: the re-activated ones too.
    [InlineData(Core.Optim.OptimizerKind.Momentum, 3)]
    public async Task WhenEveryWorkerIsLostBetweenTwoSteps_TheParameterServerReloadsThem_WithoutRestoringTheCheckpoint(Core.Optim.OptimizerKind optimizer, int parameterServerShards)
    {
        var log = new LogCapture(LogLevel.Information);
        // Both workers are lost while the parameter server's next call to them is held.
        var gate = CallGate.FromStep(121);
        await using var cluster = await StartAsync(log, gate: gate);
        var spec = Jobs.Small(workers: 2, steps: 400) with { CheckpointEvery = 50, CheckpointMinSeconds = 0, Optimizer = new() { Kind = optimizer }, ParameterServerShards = parameterServerShards };
        var expected = Jobs.Local(spec);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token,
            afterSubmit: (_, jobId) => gate.WhileHeldAsync(
                () => Task.WhenAll(Enumerable.Range(0, spec.Workers).Select(rank => cluster.Client.GetGrain<IWorkerGrain>(rank, jobId).ReleaseAsync())), Token));

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
        foreach (int rank in new[] { 0, 1 })
        {
            // Both were re-activated and loaded their shards again; an SGD cache follows the updates, so
            // it must be sent the parameters; a momentum cache is sent them with every step anyway.
            Assert.Equal(2, log.Lines.Count(l => l.StartsWith($"Worker {rank}/2 of job {id} loaded samples", StringComparison.Ordinal)));
            if (optimizer == Core.Optim.OptimizerKind.Sgd)
                Assert.Contains(log.Lines, l => l.Contains($"Job {id} step 121: worker {rank} holds no parameters; it is sent the parameter server's"));
        }
        Assert.DoesNotContain(log.Lines, l => l.Contains($"Job {id}: ") && l.Contains("restoring the checkpoint"));
    }

    [Fact]
    public async Task AStepCallLostOnTheWay_IsFoundByProbingTheWorker_AndMadeAgainWithoutWaitingOutItsTimeout()
    {
        var log = new LogCapture();
        var loss = CallLoss.Step(rank: 1, step: 50);
        // Probes every 200 ms; the call timeout is so long that a job waiting it out would hit the test's deadline.
        await using var cluster = await StartAsync(log, filter: loss.FilterAsync, probeInterval: TimeSpan.FromMilliseconds(200));
        var spec = Jobs.Small(workers: 2, steps: 200) with { CheckpointEvery = 1000 };
        var expected = Jobs.Local(spec);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Token);
        deadline.CancelAfter(TimeSpan.FromMinutes(3));

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), deadline.Token);

        Assert.True(loss.Lost.IsCompleted, "the filter lost no call: the test did not test anything");
        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
        Assert.Contains(log.Lines, l => l.Contains($"Job {id} step 50: worker 1 has no call for it running (NotReceived)") && l.Contains("calling again"));
        Assert.DoesNotContain(log.Lines, l => l.Contains($"Job {id}: ") && l.Contains("restoring the checkpoint"));
    }

    [Fact]
    public async Task ASplitJobThatLosesAWorker_RestoresItsCheckpoint_AndEndsWithTheUndisturbedWeights()
    {
        // Only worker 1 held its slice of the first layer, so the job must go back to its checkpoint.
        var log = new LogCapture();
        await using var cluster = await StartAsync(log);
        var spec = Jobs.Small(workers: 3, steps: 1000) with { CheckpointEvery = 50, CheckpointMinSeconds = 0, Parallelism = Parallelism.SplitFirstLayer };
        var expected = Jobs.Local(spec);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token,
            afterSubmit: (job, jobId) => ReleaseWorkersAfterAsync(cluster, job, jobId, 120, ranks: [1]));

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
        Assert.Contains(log.Lines, l => l.StartsWith($"Job {id}: ", StringComparison.Ordinal) && l.Contains("no worker holds the parameters") && l.Contains("restoring the checkpoint"));
    }

    /// <summary>Waits (by the job's own progress, not the clock) for some steps, then deactivates the workers of <paramref name="ranks"/>.</summary>
    private static async Task ReleaseWorkersAfterAsync(InProcessTestCluster cluster, ITrainingJobGrain job, string jobId, int steps, int[] ranks)
    {
        while ((await job.GetLossesAsync(steps, 1, TimeSpan.FromSeconds(5))).Status.StepsCompleted < steps) Token.ThrowIfCancellationRequested();
        await Task.WhenAll(ranks.Select(rank => cluster.Client.GetGrain<IWorkerGrain>(rank, jobId).ReleaseAsync()));
    }

    /// <param name="window">A split job's window of steps: short, so that a worker released after some step misses a later window of the job.</param>
    private static async Task<InProcessTestCluster> StartAsync(LogCapture log, double window = 2, CallGate? gate = null,
        Func<IOutgoingGrainCallContext, Task>? filter = null, TimeSpan? probeInterval = null, DataPlane plane = DataPlane.Messages,
        short silos = 3, ExchangeMode exchange = ExchangeMode.Factors)
    {
        var builder = new InProcessTestClusterBuilder(silos);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer();
            if (gate is not null) silo.AddOutgoingGrainCallFilter(gate.FilterAsync);
            if (filter is not null) silo.AddOutgoingGrainCallFilter(context => filter(context));
            silo.Services.AddSingleton<ILoggerProvider>(log);
            silo.Services.Configure<TrainerOptions>(o =>
            {
                // The gates and lost calls these tests set are calls of steps through Orleans messages.
                (o.Exchange, o.SplitStepBatchWindow, o.DataPlane) = (exchange, TimeSpan.FromMilliseconds(window), plane);
                if (probeInterval is { } interval) (o.WorkerProbeInterval, o.WorkerCallTimeout, o.WorkerRetryBudget) = (interval, TimeSpan.FromMinutes(6), TimeSpan.FromMinutes(2));
            });
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }
}
