using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A parameter server that steps an optimizer with state on factored packs multiplies each worker's factors
/// out as its pack comes in, on compute threads, while it waits for the next one. Packs that come in together
/// (their products overlap) and a step begun again part-way must leave the single-process trainer's bits.
/// </summary>
public sealed class ServerPrecomputeTests
{
    // A first layer wide enough to be factored and for its products to take a while, so that they overlap.
    private static TrainingSpec Spec(int workers, OptimizerKind optimizer, Precision precision = Precision.Float64) =>
        Jobs.Small(workers, steps: 6, batch: 96) with
        {
            Model = new ModelSpec([784, 128, 10], Activation.Relu, LossKind.Mse, bias: true),
            Optimizer = new OptimizerSpec { Kind = optimizer },
            LearningRate = 1e-3,
            Precision = precision,
            MicroShards = 4,
        };

    [Theory]
    [InlineData(2, OptimizerKind.Adam, Precision.Float64)]
    [InlineData(3, OptimizerKind.Adam, Precision.Float64)]
    [InlineData(4, OptimizerKind.Momentum, Precision.Float64)]
    [InlineData(3, OptimizerKind.AdamW, Precision.Float32)]
    public async Task PacksThatComeInTogether_HaveTheSingleProcessTrainersLossesAndParameters_BitForBit(int workers, OptimizerKind optimizer, Precision precision)
    {
        var spec = Spec(workers, optimizer, precision);
        using var compute = new ComputeScheduler(2);
        var (model, replicas) = Start(spec, compute);

        var losses = new List<double>();
        for (int step = 1; step <= spec.Steps; step++)
        {
            // Every pack computed first, then added back to back: each product starts before the one before has ended.
            var packs = replicas.Select(replica => Computed(replica, model, step)).ToArray();
            model.Begin(step);
            for (int rank = 0; rank < workers; rank++) await model.AddAsync(rank, packs[rank].Losses, packs[rank].Pack);
            losses.Add(await model.CompleteAsync(step));
        }

        AssertSingleProcess(spec, model, losses);
    }

    [Fact]
    public async Task AStepBegunAgainPartWay_DoesNotUseTheProductsOfTheAttemptBefore()
    {
        var spec = Spec(3, OptimizerKind.Adam);
        using var compute = new ComputeScheduler(2);
        var (model, replicas) = Start(spec, compute);

        var losses = new List<double>();
        for (int step = 1; step <= spec.Steps; step++)
        {
            var packs = replicas.Select(replica => Computed(replica, model, step)).ToArray();
            if (step == 3)
            {
                // A run that broke after two packs: their products were begun with packs of zeros.
                model.Begin(step);
                for (int rank = 0; rank < 2; rank++)
                    await model.AddAsync(rank, packs[rank].Losses, new TensorPayload(new byte[packs[rank].Pack.Bytes.Length]));
            }
            model.Begin(step);
            for (int rank = 0; rank < replicas.Length; rank++) await model.AddAsync(rank, packs[rank].Losses, packs[rank].Pack);
            losses.Add(await model.CompleteAsync(step));
        }

        AssertSingleProcess(spec, model, losses);
    }

    private static (ServerModel Model, ShardReplica[] Replicas) Start(TrainingSpec spec, ComputeScheduler compute)
    {
        var plan = ExchangePlan.For(spec, factors: true);
        Assert.True(plan.Factored[0], "the first layer should travel as factors");
        var data = Synthetic.Data(spec.ResolvedSamples, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed);
        var model = ServerModel.Create(spec, plan, compute);
        model.Load(new ModelState(InitialParameters.Float64(spec)), 0, data);
        var replicas = Enumerable.Range(0, spec.Workers).Select(rank => ShardReplica.Create(spec, plan, rank, data, 0)).ToArray();
        return (model, replicas);
    }

    /// <summary>A worker's pack of <paramref name="step"/>, its cache sent the server's parameters (as any optimizer with state does).</summary>
    private static (double[] Losses, TensorPayload Pack) Computed(ShardReplica replica, ServerModel model, int step)
    {
        replica.Load(model.Parameters, step - 1);
        var (losses, pack) = replica.Compute();
        // The replica's pack buffers are reused two steps on; the server may read this one until the step completes.
        return (losses, new TensorPayload([.. pack.Bytes]));
    }

    private static void AssertSingleProcess(TrainingSpec spec, ServerModel model, List<double> losses)
    {
        var expected = Jobs.Local(spec);
        Assert.Equal(expected.Losses, losses);
        var parameters = new double[expected.Parameters.Length];
        model.CopyParameters(parameters);
        Assert.Equal(expected.Parameters, parameters);
    }
}
