using Orleans.TestingHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Training;
using Trainer.Grains;
using Trainer.Hosting;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Both data planes (packs worker to worker over links, or through the parameter server in
/// Orleans messages) and both exchanges (dense gradients, sufficient factors) give the
/// single-process run's losses and weights, bit for bit, in float64 and float32: the links move
/// where the update is built, never what it is.
/// </summary>
public sealed class DataPlaneTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(DataPlane.Links, ExchangeMode.Dense)]
    [InlineData(DataPlane.Links, ExchangeMode.Factors)]
    [InlineData(DataPlane.Orleans, ExchangeMode.Dense)]
    [InlineData(DataPlane.Orleans, ExchangeMode.Factors)]
    public async Task EitherDataPlane_WithEitherExchange_ReproducesTheSingleProcessRun_BitForBit(DataPlane plane, ExchangeMode exchange)
    {
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer();
            silo.Services.Configure<TrainerOptions>(o => (o.DataPlane, o.Exchange, o.SplitStepBatchWindow) = (plane, exchange, TimeSpan.FromMilliseconds(2)));
        });
        await using var cluster = builder.Build();
        await cluster.DeployAsync(Token);

        foreach (var spec in new[]
        {
            Jobs.Small(workers: 3, steps: 60) with { CheckpointEvery = 7, CheckpointMinSeconds = 0 },
            Jobs.Small(workers: 2, steps: 40, loss: LossKind.Mse) with { Precision = Precision.Float32 },
        })
        {
            var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token);
            var expected = Jobs.Local(spec);

            await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, expected);
        }
    }

    [Theory]
    [InlineData(1, "to the parameter server")]
    [InlineData(2, "to each other over links")]
    public async Task TheAutoDataPlane_SendsPacksOverLinks_ExactlyWhenTheClusterHasSeveralSilos(int silos, string expected)
    {
        var log = new LogCapture(LogLevel.Information);
        var builder = new InProcessTestClusterBuilder((short)silos);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddTrainer();
            silo.Services.AddSingleton<ILoggerProvider>(log);
        });
        await using var cluster = builder.Build();
        await cluster.DeployAsync(Token);
        var spec = Jobs.Small(workers: 2, steps: 20);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(spec), Token);

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Contains(log.Lines, l => l.StartsWith($"Job {id}: exchange ", StringComparison.Ordinal) && l.Contains($"the workers send their packs {expected}"));
        Assert.Equal(Jobs.Local(spec).Losses, losses);
    }
}
