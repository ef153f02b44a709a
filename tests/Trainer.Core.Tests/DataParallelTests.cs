using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// The data-parallel invariant: W workers produce the single-process update (within floating-point
/// reassociation of the shard sums: 1e-12 relative, not bits, for every loss), and the same W is bit-reproducible.
/// </summary>
public class DataParallelTests
{
    private const int Steps = 20;

    public static TheoryData<int> WorkerCounts() => [2, 3, 4];

    [Theory]
    [MemberData(nameof(WorkerCounts))]
    public void SeedJob_WithWWorkers_MatchesTheSingleProcessRun(int workers)
    {
        var one = Run(new TrainingSpec { Workers = 1 }, SeedData());
        var many = Run(new TrainingSpec { Workers = workers }, SeedData());
        AssertClose(one, many, $"{workers} workers");
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
