using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// The data-parallel invariant: W workers produce the single-process run's losses and weights BIT FOR
/// BIT, for every W up to the job's micro-shard count (each worker runs whole micro-shards and the sums
/// follow one fixed tree, <see cref="MicroShards"/>), uneven counts, SGD and Adam, float64 and float32,
/// and mini-batches with a short last batch alike.
/// </summary>
public class DataParallelTests
{
    private const int Steps = 20;

    public static TheoryData<int> WorkerCounts() => [2, 3, 4];

    public static TheoryData<string, TrainingSpec> Jobs => new()
    {
        { "seed (w1 factored, w2 dense), 2 micro-shards", new TrainingSpec() },
        { "adam, cross-entropy, 13 samples in 4 micro-shards", new TrainingSpec
            {
                Model = new ModelSpec([50, 16, 10], Activation.Relu, LossKind.CrossEntropy, bias: true), Batch = 13, LearningRate = 0.01, MicroShards = 4,
                Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam },
            } },
        { "float32 momentum, mse with biases, all dense, 3 micro-shards", new TrainingSpec
            {
                Model = new ModelSpec([6, 5, 3], Activation.Tanh, LossKind.Mse, bias: true), Batch = 10, LearningRate = 0.05, MicroShards = 3,
                Precision = Precision.Float32, Optimizer = new OptimizerSpec { Kind = OptimizerKind.Momentum },
            } },
        { "mini-batches of 16 of 60, last batch of 12 kept, 8 micro-shards", new TrainingSpec
            {
                Model = new ModelSpec([30, 12, 4], Activation.Sigmoid, LossKind.Sse), Samples = 60, Batch = 16, LearningRate = 1e-3,
                MicroShards = 8, Seed = 4,
            } },
    };

    [Theory]
    [MemberData(nameof(Jobs))]
    public void EveryWorkerCount_UpToTheMicroShards_GivesTheSameBits(string job, TrainingSpec spec)
    {
        var data = Synthetic.Data(spec.ResolvedSamples, spec.Model.InputSize, spec.Model.OutputSize, seed: 5);
        if (spec.Model.Loss == LossKind.CrossEntropy) data = new Dataset(data.X, TestArrays.OneHot(data.Count, 10, seed: 6), data.Count, data.InputSize, 10);
        var one = Run(spec with { Workers = 1 }, data, InitKind.Xavier);
        Assert.True(one.Losses[^1] < one.Losses[0], $"{job}: the check needs a run that moves");
        for (int workers = 2; workers <= spec.ResolvedMicroShards; workers++)
        {
            var many = Run(spec with { Workers = workers }, data, InitKind.Xavier);
            Assert.True(one.Losses.SequenceEqual(many.Losses), $"{job}: {workers} workers' losses differ from 1 worker's");
            Assert.True(one.Parameters.SequenceEqual(many.Parameters), $"{job}: {workers} workers' weights differ from 1 worker's");
        }
    }

    [Fact]
    public void AnotherMicroShardCount_GivesOtherBits_SoTheCheckCanTell()
    {
        var four = Run(new TrainingSpec { Workers = 2, MicroShards = 4 }, SeedData());
        var two = Run(new TrainingSpec { Workers = 2 }, SeedData());
        AssertClose(four, two, "2 micro-shards instead of 4");
        Assert.False(four.Parameters.SequenceEqual(two.Parameters), "the sums' order should show in the last bits");
    }

    [Theory]
    [MemberData(nameof(WorkerCounts))]
    public void SeedJob_WithWWorkers_MatchesTheSingleProcessRun(int workers)
    {
        // The seed's batch of 64 is 2 micro-shards by default; 4 let up to 4 workers give 1 worker's bits.
        var one = Run(new TrainingSpec { Workers = 1, MicroShards = 4 }, SeedData());
        var many = Run(new TrainingSpec { Workers = workers, MicroShards = 4 }, SeedData());
        Assert.Equal(one.Losses, many.Losses);
        Assert.Equal(one.Parameters, many.Parameters);
    }

    [Fact]
    public void UnevenShards_MatchTheSingleProcessRun_WithBiasTanhAndMse()
    {
        // 10 samples on 3 workers: shards of 4, 3, 3. MSE divides by the FULL batch, not per shard.
        var model = new ModelSpec([6, 5, 3], Activation.Tanh, LossKind.Mse, bias: true);
        var spec = new TrainingSpec { Model = model, Batch = 10, LearningRate = 0.05 };
        var data = Synthetic.Data(10, 6, 3, seed: 3);
        var one = Run(spec with { Workers = 1 }, data);
        var three = Run(spec with { Workers = 3 }, data);
        AssertClose(one, three, "3 workers on 10 samples");
        Assert.True(one.Losses[^1] < one.Losses[0], "the check needs a run that moves");
    }

    [Theory]
    [MemberData(nameof(WorkerCounts))]
    public void CrossEntropyClassifier_WithWWorkers_MatchesTheSingleProcessRun(int workers)
    {
        // 13 samples: uneven shards, and CE's mean is over the FULL batch, not per shard. The first
        // layer is factored (13·16 values < 50·16), the second dense; Adam, as a classifier is trained.
        var model = new ModelSpec([50, 16, 10], Activation.Relu, LossKind.CrossEntropy, bias: true);
        var spec = new TrainingSpec { Model = model, Batch = 13, LearningRate = 0.01, Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam } };
        var data = new Dataset(Synthetic.Data(13, 50, 10, seed: 5).X, TestArrays.OneHot(13, 10, seed: 6), 13, 50, 10);
        Assert.Equal([true, false], ExchangePlan.For(spec).Factored);

        var one = Run(spec with { Workers = 1 }, data, InitKind.He);
        var many = Run(spec with { Workers = workers }, data, InitKind.He);

        AssertClose(one, many, $"{workers} workers, cross-entropy");
        Assert.True(one.Losses[^1] < 0.5 * one.Losses[0], "the check needs a run that learns");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void SameWorkerCount_IsBitIdenticalRunToRun(int workers)
    {
        var first = Run(new TrainingSpec { Workers = workers }, SeedData());
        var second = Run(new TrainingSpec { Workers = workers }, SeedData());
        Assert.Equal(first.Losses, second.Losses);
        Assert.Equal(first.Parameters, second.Parameters);
    }

    private static Dataset SeedData() => Synthetic.Data(64, 1000, 10, seed: 0);

    private static (double[] Losses, double[] Parameters) Run(TrainingSpec spec, Dataset data, InitKind init = InitKind.Normal)
    {
        var parameters = Initializer.Create(ParameterLayout.For(spec.Model), init, seed: 0);
        var trainer = new LocalTrainer(spec, data, parameters);
        var losses = new double[Steps];
        for (int t = 0; t < Steps; t++) losses[t] = trainer.Step();
        return (losses, trainer.Parameters);
    }

    private static void AssertClose((double[] Losses, double[] Parameters) expected, (double[] Losses, double[] Parameters) actual, string what)
    {
        for (int t = 0; t < Steps; t++)
            Assert.True(TestArrays.RelativeDifference(actual.Losses[t], expected.Losses[t]) < 1e-12,
                $"{what}: step {t + 1} loss {actual.Losses[t]:R}, single process {expected.Losses[t]:R}");
        double p = TestArrays.MaxRelativeDifference(actual.Parameters, expected.Parameters);
        Assert.True(p < 1e-12, $"{what}: parameters differ from the single-process run by {p:E2} (relative)");
    }
}
