using Microsoft.Extensions.Logging;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A data-parallel job that goes through its data in epochs of shuffled mini-batches (an epoch's
/// smaller last batch kept or dropped) gives the single-process run's losses and weights, bit for
/// bit: every worker and the parameter server find each step's rows from the spec alone, with
/// either pack encoding, with SGD (caches follow the updates) and Adam (caches get the parameters),
/// through checkpoints, and from uploaded data as from synthetic.
/// </summary>
public sealed class MiniBatchJobTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public static TheoryData<ExchangeMode, OptimizerKind> Cases()
    {
        var cases = new TheoryData<ExchangeMode, OptimizerKind>();
        foreach (var exchange in new[] { ExchangeMode.Dense, ExchangeMode.Factors })
            foreach (var optimizer in new[] { OptimizerKind.Sgd, OptimizerKind.Adam })
                cases.Add(exchange, optimizer);
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task MiniBatchEpochs_ReproduceTheSingleProcessRun_BitForBit(ExchangeMode exchange, OptimizerKind optimizer)
    {
        await using var cluster = await ParameterServerStepTests.StartAsync(2, new LogCapture(LogLevel.Warning), o => o.Exchange = exchange);
        var rule = new OptimizerSpec { Kind = optimizer };

        // 40 samples in batches of 6: six of 6 and a last of 4 kept; the first layer's factors (batch 6 x 8 < 20 x 8).
        var kept = Jobs.Small(workers: 3, steps: 30, batch: 6) with { Samples = 40, CheckpointEvery = 5, CheckpointMinSeconds = 0, Optimizer = rule };
        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Synthetic(kept), Token);
        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, Jobs.Local(kept));
        Assert.Equal(7, kept.Schedule().BatchesPerEpoch);

        // Uploaded samples, the last batch dropped, float32, two workers.
        var dropped = Jobs.Small(workers: 2, steps: 20, batch: 8, loss: LossKind.Mse) with
            { Samples = 30, DropLast = true, Precision = Precision.Float32, Optimizer = rule };
        var samples = Synthetic.Data(dropped.Samples, dropped.Model.InputSize, dropped.Model.OutputSize, seed: 21);
        (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Uploaded(dropped, samples), Token);
        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, Jobs.Local(dropped, samples));
    }

    [Theory]
    [InlineData(OptimizerKind.Sgd)]
    [InlineData(OptimizerKind.Adam)]
    public async Task AJobWithATestSet_ScoresItAfterEveryEpochAndTheLastStep_AsTheSingleProcessWeightsScore(OptimizerKind optimizer)
    {
        await using var cluster = await ParameterServerStepTests.StartAsync(1, new LogCapture(LogLevel.Warning));
        // 30 training rows in batches of 8 (four an epoch, the last of 6), 2.5 epochs; 11 test rows after them.
        var spec = Jobs.Small(workers: 2, steps: 10, batch: 8, loss: LossKind.Mse) with
            { Samples = 30, TestSamples = 11, Optimizer = new OptimizerSpec { Kind = optimizer }, CheckpointEvery = 3, CheckpointMinSeconds = 0 };
        var rows = Synthetic.Data(spec.Samples + spec.TestSamples, spec.Model.InputSize, spec.Model.OutputSize, seed: 4);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Uploaded(spec, rows), Token);

        var training = rows.Take(spec.Samples);
        var test = new Dataset(rows.X[(spec.Samples * rows.InputSize)..], rows.Y[(spec.Samples * rows.OutputSize)..], spec.TestSamples, rows.InputSize, rows.OutputSize);
        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, Jobs.Local(spec, training));
        var trainer = new LocalTrainer(spec, training, Initializer.Create(ParameterLayout.For(spec.Model), spec.Init, spec.Seed));
        var expected = new List<EvalRecord>();
        for (int step = 1; step <= spec.Steps; step++)
        {
            trainer.Step();
            if (step is 4 or 8 or 10)
            {
                var score = new Evaluation(spec.Model).Evaluate(trainer.Parameters, test);
                // N(0,1) targets are not classes: no accuracy.
                expected.Add(new EvalRecord(step, (step - 1) / 4 + 1, "test", score.Samples, score.Loss, double.NaN));
            }
        }
        var evals = (await cluster.Client.GetGrain<ITrainingJobGrain>(id).GetLossesAsync(1, spec.Steps, TimeSpan.Zero)).Evals;
        Assert.Equal(expected, evals);
        Assert.Equal(expected[^1], status.LastEval);
    }
}
