using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;
using Trainer.Grains;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A data-parallel step has one protocol: the workers' packs go to the parameter server, which adds
/// them in shard order, applies the optimizer to the parameters it owns, and brings the workers'
/// caches up to date (with the update for plain SGD, with the parameters otherwise). Both pack
/// encodings (dense gradients, sufficient factors), every optimizer and both precisions give the
/// single-process run's losses and weights, bit for bit.
/// </summary>
public sealed class ParameterServerStepTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public static TheoryData<ExchangeMode, OptimizerKind> Cases()
    {
        var cases = new TheoryData<ExchangeMode, OptimizerKind>();
        foreach (var exchange in new[] { ExchangeMode.Dense, ExchangeMode.Factors })
            foreach (var optimizer in new[] { OptimizerKind.Sgd, OptimizerKind.Nesterov, OptimizerKind.Adam })
                cases.Add(exchange, optimizer);
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task EitherPackEncoding_WithEachOptimizer_ReproducesTheSingleProcessRun_BitForBit(ExchangeMode exchange, OptimizerKind optimizer)
    {
        var log = new LogCapture(LogLevel.Information);
        await using var cluster = await StartAsync(2, log, o => o.Exchange = exchange);
        var rule = new OptimizerSpec { Kind = optimizer, WeightDecay = 1e-3, Schedule = ScheduleKind.Cosine, WarmupSteps = 5 };

        foreach (var spec in new[]
        {
            Jobs.Small(workers: 3, steps: 60) with { CheckpointEvery = 7, CheckpointMinSeconds = 0, Optimizer = rule },
            Jobs.Small(workers: 2, steps: 40, loss: LossKind.Mse) with { Precision = Precision.Float32, Optimizer = rule },
        })
        {
            var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token);

            await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, Jobs.Local(spec));
            Assert.Contains(log.Lines, l => l.StartsWith($"Job {id}: the parameter server holds the parameters and applies optimizer {rule.Name}", StringComparison.Ordinal)
                && l.Contains(optimizer == OptimizerKind.Sgd ? "each step's update" : "the new parameters each step"));
        }
    }

    [Theory]
    [InlineData(OptimizerKind.Sgd, Precision.Float64)]
    [InlineData(OptimizerKind.Momentum, Precision.Float64)]
    [InlineData(OptimizerKind.AdamW, Precision.Float64)]
    [InlineData(OptimizerKind.Adam, Precision.Float32)]
    public async Task AParameterServerShardedByRange_ReproducesTheSingleProcessRun_AndItsCheckpointRestoresExactly(OptimizerKind optimizer, Precision precision)
    {
        // Three shards over three silos own the ranges and their state; the parameter server is lost
        // mid-job, so the job restores a checkpoint assembled from the shards and reloads them.
        var log = new LogCapture(LogLevel.Information);
        // Held between two batches (a batch never crosses a checkpoint step): the job cannot end first, however fast its steps.
        var gate = CallGate.AtBatch(81);
        await using var cluster = await StartAsync(3, log, configureSilo: silo => silo.AddOutgoingGrainCallFilter(gate.FilterAsync));
        var spec = Jobs.Small(workers: 2, steps: 200) with
        {
            CheckpointEvery = 40, CheckpointMinSeconds = 0, Precision = precision, ParameterServerShards = 3,
            Optimizer = new OptimizerSpec { Kind = optimizer, WeightDecay = 1e-2, Schedule = ScheduleKind.Step, StepEvery = 50, Gamma = 0.5 },
        };

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token, afterSubmit: (_, jobId) =>
            gate.WhileHeldAsync(() => cluster.Client.GetGrain<IParameterServerGrain>(jobId).ReleaseAsync(), Token));

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, Jobs.Local(spec));
        Assert.Contains(log.Lines, l => l.StartsWith($"Job {id}: 3 parameter-server shards hold the parameters and the optimizer state and apply optimizer {spec.Optimizer.Name}", StringComparison.Ordinal)
            && l.Contains("the workers' caches get the new parameters from the shards each step"));
        Assert.Contains(log.Lines, l => l.StartsWith($"Job {id}: ", StringComparison.Ordinal) && l.Contains("restoring the checkpoint"));
    }

    [Fact]
    public async Task TheCheckpoint_HoldsTheOptimizerState_SoARestoredAdamJobEndsWithTheUndisturbedBits()
    {
        // The parameter server is lost between two steps (its activation goes, as with its silo): the
        // job restores its latest checkpoint, parameters AND Adam's moments, and replays.
        var log = new LogCapture();
        var gate = CallGate.AtBatch(101);
        await using var cluster = await StartAsync(2, log, configureSilo: silo => silo.AddOutgoingGrainCallFilter(gate.FilterAsync));
        var spec = Jobs.Small(workers: 2, steps: 300) with
        {
            CheckpointEvery = 50, CheckpointMinSeconds = 0,
            Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam },
        };

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token, afterSubmit: (_, jobId) =>
            gate.WhileHeldAsync(() => cluster.Client.GetGrain<IParameterServerGrain>(jobId).ReleaseAsync(), Token));

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, Jobs.Local(spec));
        Assert.Contains(log.Lines, l => l.StartsWith($"Job {id}: ", StringComparison.Ordinal) && l.Contains("restoring the checkpoint"));
    }

    /// <summary>An in-memory cluster of <paramref name="silos"/> Trainer silos whose log goes to <paramref name="log"/>.</summary>
    internal static async Task<InProcessTestCluster> StartAsync(short silos, LogCapture log, Action<TrainerOptions>? configure = null, Action<ISiloBuilder>? configureSilo = null)
    {
        var builder = new InProcessTestClusterBuilder(silos);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer();
            silo.Services.AddSingleton<ILoggerProvider>(log);
            if (configure is not null) silo.Services.Configure(configure);
            configureSilo?.Invoke(silo);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync(Token);
        return cluster;
    }
}
