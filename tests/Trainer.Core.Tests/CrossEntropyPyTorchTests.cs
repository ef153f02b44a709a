using System.Text.Json;
using Trainer.Core.Autograd;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// <c>--loss ce</c> against PyTorch 1.13's <c>cross_entropy</c> (the mean over the batch) on small MLPs
/// with fixed weights (tests/reference/ce/make_torch_values.py): the loss and every weight's gradient,
/// through each engine, precision and exchange path, on one shard and on uneven shards, where the mean
/// must be over the whole batch, not the shard. One case has logits in the thousands, which a naive
/// exp would overflow.
/// </summary>
public sealed class CrossEntropyPyTorchTests
{
    internal sealed record Case(string Name, ModelSpec Spec, int Samples, double[] X, double[] Y, double[] Parameters, double Loss, double[] Gradient);

    public static TheoryData<string> CaseNames => [.. Load().Keys];

    public static TheoryData<string, bool, int> CasesPlansAndShards()
    {
        var data = new TheoryData<string, bool, int>();
        foreach (var name in Load().Keys)
            foreach (var (factored, workers) in new[] { (false, 1), (false, 3), (true, 1), (true, 3) })
                data.Add(name, factored, workers);
        return data;
    }

    [Theory]
    [MemberData(nameof(CasesPlansAndShards))]
    public void HandEngine_LossAndGradient_MatchPyTorch_ForEveryPlanAndShardCount(string name, bool factored, int workers)
    {
        var c = Load()[name];
        var plan = factored
            ? ExchangePlan.With(c.Spec, c.Samples, [.. Enumerable.Repeat(true, c.Spec.LayerCount)])
            : ExchangePlan.For(c.Spec, c.Samples, factorsAvailable: false);

        var (loss, gradient) = Exchange.Gradient(c.Spec, new Mlp(c.Spec, new ManagedBlas()), plan, c.Parameters, c.X, c.Y, workers);

        AssertMatches(c, loss, gradient, 1e-12, $"{name}, {plan.Describe()}, {workers} shard(s)");
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void AutogradEngine_LossAndGradient_MatchPyTorch(string name)
    {
        var c = Load()[name];
        var gradient = new double[c.Parameters.Length];

        double sum = new AutogradMlp(c.Spec, blas: new ManagedBlas()).LossAndGradient(c.Parameters, c.X, c.Y, c.Samples, gradient);

        double scale = c.Spec.Loss.Scale(c.Samples, c.Spec.OutputSize);
        for (int i = 0; i < gradient.Length; i++) gradient[i] *= scale;
        AssertMatches(c, sum * scale, gradient, 1e-12, $"{name}, autograd");
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Float32HandEngine_LossAndGradient_MatchPyTorch_ToSinglePrecision(string name)
    {
        var c = Load()[name];
        var plan = ExchangePlan.For(c.Spec, c.Samples, factorsAvailable: false);

        var (loss, gradient) = Exchange.Gradient(c.Spec, new Mlp<float>(c.Spec, new ManagedBlas()), plan,
            Precisions.Narrow(c.Parameters), Precisions.Narrow(c.X), Precisions.Narrow(c.Y), workers: 2);

        // NOTE: the inputs themselves are rounded to float (~6e-8 relative), and the logits of the
        // large case are in the thousands, so its loss moves by ~1e-4 absolute: judged relatively.
        AssertMatches(c, loss, Precisions.Widen(gradient), 1e-4, $"{name}, float32");
    }

    public static TheoryData<string, Engine, Parallelism, int> CasesAndTrainers()
    {
        var data = new TheoryData<string, Engine, Parallelism, int>();
        foreach (var name in Load().Keys)
        {
            data.Add(name, Engine.Hand, Parallelism.Data, 1);
            data.Add(name, Engine.Hand, Parallelism.Data, 2);
            data.Add(name, Engine.Hand, Parallelism.SplitFirstLayer, 2);
            data.Add(name, Engine.Autograd, Parallelism.Data, 3);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(CasesAndTrainers))]
    public void LocalTrainerStep_ReportsPyTorchsLoss_AndStepsAlongPyTorchsGradient(string name, Engine engine, Parallelism parallelism, int workers)
    {
        var c = Load()[name];
        const double lr = 0.01;
        var spec = new TrainingSpec { Model = c.Spec, Batch = c.Samples, Steps = 1, LearningRate = lr, Workers = workers, Engine = engine, Parallelism = parallelism };
        var trainer = new LocalTrainer(spec, new Data.Dataset(c.X, c.Y, c.Samples, c.Spec.InputSize, c.Spec.OutputSize), (double[])c.Parameters.Clone());

        double loss = trainer.Step();
        var parameters = trainer.Parameters;

        // SGD: p' = p - lr·g, so the step's gradient is (p - p') / lr, to ~eps·|p|/(lr·|g|) ≈ 1e-13 relative.
        var gradient = c.Parameters.Zip(parameters, (before, after) => (before - after) / lr).ToArray();
        AssertMatches(c, loss, gradient, 1e-10, $"{name}, {engine} engine, {parallelism} over {workers}");
    }

    private static void AssertMatches(Case c, double loss, double[] gradient, double tolerance, string what)
    {
        Assert.True(TestArrays.RelativeDifference(loss, c.Loss) <= tolerance, $"{what}: loss {loss:R}, PyTorch {c.Loss:R}");
        double difference = TestArrays.MaxRelativeDifference(gradient, c.Gradient);
        Assert.True(difference <= tolerance, $"{what}: gradient differs from PyTorch's by {difference:E2} of its largest entry");
    }

    internal static Dictionary<string, Case> Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Reference.PathOf("ce", "torch_values.json")));
        var cases = new Dictionary<string, Case>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var sizes = c.GetProperty("sizes").EnumerateArray().Select(s => s.GetInt32()).ToArray();
            var spec = new ModelSpec(sizes, Activations.Parse(c.GetProperty("activation").GetString()), LossKind.CrossEntropy, c.GetProperty("bias").GetBoolean());
            var layout = ParameterLayout.For(spec);
            var parameters = new double[layout.Count];
            var gradient = new double[layout.Count];
            foreach (var view in layout.Views)
            {
                Values(c.GetProperty("weights").GetProperty(view.Name)).CopyTo(view.Of(parameters.AsSpan()));
                Values(c.GetProperty("grad").GetProperty(view.Name)).CopyTo(view.Of(gradient.AsSpan()));
            }
            var x = Values(c.GetProperty("x"));
            var name = c.GetProperty("name").GetString()!;
            cases[name] = new Case(name, spec, x.Length / spec.InputSize, x, Values(c.GetProperty("y")), parameters, c.GetProperty("loss").GetDouble(), gradient);
        }
        return cases;

        static double[] Values(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetDouble())];
    }
}
