using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;
using Trainer.Abstractions;
using Trainer.Core.Training;
using Trainer.Grains;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>
/// The parameters live in the workers' replicas. A worker that loses its replica (its activation
/// is gone, as after a crash) gets a copy of a surviving one: on the Orleans data plane at the step
/// it missed, on links from the last step every survivor completed. When none survives, the job
/// restores its checkpoint. Either way the job ends with exactly the undisturbed weights. The
/// silos' log shows which recovery ran, so a test cannot pass without it.
/// </summary>
public sealed class ReplicaRecoveryTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OnTheOrleansDataPlane_AWorkerThatLostItsReplica_GetsASurvivorsCopy_AndEndsWithTheUndisturbedWeights()
    {
        var log = new LogCapture();
        await using var cluster = await StartAsync(log, DataPlane.Orleans);
        var spec = Jobs.Small(workers: 3, steps: 400) with { CheckpointEvery = 1000 };
        var expected = Jobs.Local(spec);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token,
            afterSubmit: (job, jobId) => ReleaseWorkersAfterAsync(cluster, job, jobId, 100, ranks: [1]));

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
        Assert.Contains(log.Lines, l => l.Contains($"Job {id} step") && l.Contains("worker 1 lost its replica; it gets a copy of worker 0's"));
    }

    [Fact]
    public async Task OnLinks_AWorkerThatLostItsReplica_TheWorkersCarryOnFromASurvivorsReplica_WithoutRestoringTheCheckpoint()
    {
        var log = new LogCapture();
        await using var cluster = await StartAsync(log);
        // No checkpoint after the initial one: a restore would replay from step 0, and the log would say so.
        var spec = Jobs.Small(workers: 3, steps: 400) with { CheckpointEvery = 1000 };
        var expected = Jobs.Local(spec);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token,
            afterSubmit: (job, jobId) => ReleaseWorkersAfterAsync(cluster, job, jobId, 100, ranks: [1]));

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
        Assert.Contains(log.Lines, l => l.StartsWith($"Job {id} step ", StringComparison.Ordinal) && l.Contains("the workers carry on from worker ") && l.Contains("'s replica after step "));
        Assert.DoesNotContain(log.Lines, l => l.Contains($"Job {id}: ") && l.Contains("restoring the checkpoint"));
    }

    [Theory]
    [InlineData(DataPlane.Links)]
    [InlineData(DataPlane.Orleans)]
    public async Task WhenEveryWorkerIsLostBetweenTwoSteps_TheJobRestoresItsCheckpoint_AndEndsWithTheUndisturbedWeights(DataPlane plane)
    {
        var log = new LogCapture();
        // Both workers are lost while the parameter server's next call to them is held, so neither
        // can carry on from the other's replica (released without the gate, one release could land
        // a window later, and the job would rightly resume from the other's replica: seen once in CI).
        var gate = new StepGate(fromStep: 121);
        await using var cluster = await StartAsync(log, plane, gate: gate);
        var spec = Jobs.Small(workers: 2, steps: 400) with { CheckpointEvery = 50, CheckpointMinSeconds = 0 };
        var expected = Jobs.Local(spec);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token,
            afterSubmit: async (job, jobId) =>
            {
                await gate.Reached.WaitAsync(Token);
                await Task.WhenAll(Enumerable.Range(0, spec.Workers).Select(rank => cluster.Client.GetGrain<IWorkerGrain>(rank, jobId).ReleaseAsync()));
                gate.Open();
            });

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
        Assert.Contains(log.Lines, l => l.StartsWith($"Job {id}: ", StringComparison.Ordinal) && l.Contains("no worker holds the parameters") && l.Contains("restoring the checkpoint"));
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

    /// <param name="window">The links' window of steps: short, so that a worker released after some step misses a later window of the job.</param>
    private static async Task<InProcessTestCluster> StartAsync(LogCapture log, DataPlane plane = DataPlane.Links, double window = 2, StepGate? gate = null)
    {
        var builder = new InProcessTestClusterBuilder(3);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer();
            if (gate is not null) silo.AddOutgoingGrainCallFilter(gate.FilterAsync);
            silo.Services.AddSingleton<ILoggerProvider>(log);
            silo.Services.Configure<TrainerOptions>(o => (o.Exchange, o.DataPlane, o.SplitStepBatchWindow) = (ExchangeMode.Factors, plane, TimeSpan.FromMilliseconds(window)));
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>
    /// Holds every call that would run a step from <paramref name="fromStep"/> on (a window of steps
    /// over links, or one step on the Orleans plane) until <see cref="Open"/>: the cluster can be
    /// changed between two steps, whatever the timing. <see cref="Reached"/> completes when the
    /// first such call is held, i.e. when every step before it is done.
    /// </summary>
    private sealed class StepGate(int fromStep)
    {
        private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Reached => _reached.Task;

        public void Open() => _open.TrySetResult();

        public async Task FilterAsync(IOutgoingGrainCallContext context)
        {
            int? step = context.Request.GetArgumentCount() == 1 ? context.Request.GetArgument(0) switch
            {
                LinkedRun run => run.FirstStep,
                WorkRequest request => request.Step,
                _ => null,
            } : null;
            if (step >= fromStep && !_open.Task.IsCompleted)
            {
                _reached.TrySetResult();
                await _open.Task;
            }
            await context.Invoke();
        }
    }
}
