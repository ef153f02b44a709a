using System.Text.Json;
using Trainer.Core.Optim;

namespace Trainer.Core.Tests.Optim;

/// <summary>
/// The values tests/reference/optim/make_torch_values.py recorded from PyTorch 1.13 (torch.optim's
/// single-tensor SGD/Adam/AdamW, its LambdaLR/StepLR/CosineAnnealingLR/LinearLR).
/// </summary>
internal sealed class TorchOptimValues
{
    /// <summary>One optimizer x schedule x dtype run: the lr and the parameters after each step.</summary>
    public sealed record Run(string Dtype, OptimizerSpec Spec, double LearningRate, double[] Rates, double[][] Parameters)
    {
        public override string ToString() => $"{Dtype} {Spec.Name} λ={Spec.WeightDecay} {Spec.Schedule} warm-up {Spec.WarmupSteps}";
    }

    /// <summary>A torch scheduler's rates for a job of <c>Steps</c> steps (as many as it recorded).</summary>
    public sealed record Schedule(string Name, OptimizerSpec Spec, double LearningRate, int Steps, double[] Rates);

    /// <summary>A small sigmoid MLP trained by torch: losses per step and the final flat weights [w1, w2].</summary>
    public sealed record TrainerRun(OptimizerSpec Spec, double LearningRate, int Steps, double[] Losses, double[] Parameters);

    public required int Steps { get; init; }
    public required double[] Initial { get; init; }
    public required double[][] Gradients { get; init; }
    public required Run[] Runs { get; init; }
    public required Schedule[] Schedules { get; init; }
    public required (int Batch, int Inputs, int Hidden, int Outputs) TrainerShape { get; init; }
    public required double[] TrainerX { get; init; }
    public required double[] TrainerY { get; init; }
    public required double[] TrainerInitial { get; init; }
    public required TrainerRun[] TrainerRuns { get; init; }

    public static TorchOptimValues Instance { get; } = Load();

    private static TorchOptimValues Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Reference.PathOf("optim", "torch_values.json")));
        var root = doc.RootElement;
        int steps = root.GetProperty("steps").GetInt32(), every = root.GetProperty("every").GetInt32();
        double gamma = root.GetProperty("gamma").GetDouble();
        var trainer = root.GetProperty("trainer");
        return new TorchOptimValues
        {
            Steps = steps,
            Initial = Values(root.GetProperty("initial")),
            Gradients = [.. root.GetProperty("gradients").EnumerateArray().Select(Values)],
            Runs = [.. root.GetProperty("runs").EnumerateArray().Select(r => new Run(
                r.GetProperty("dtype").GetString()!,
                SpecOf(r, every, gamma),
                r.GetProperty("hyper").GetProperty("lr").GetDouble(),
                Values(r.GetProperty("lrs")),
                [.. r.GetProperty("parameters").EnumerateArray().Select(Values)]))],
            Schedules = [.. root.GetProperty("schedules").EnumerateArray().Select(s => new Schedule(
                s.GetProperty("name").GetString()!,
                new OptimizerSpec
                {
                    Schedule = OptimizerSpec.ParseSchedule(s.GetProperty("schedule").GetString()),
                    WarmupSteps = s.GetProperty("warmup").GetInt32(),
                    StepEvery = s.GetProperty("every").GetInt32(),
                    Gamma = s.GetProperty("gamma").GetDouble(),
                },
                s.GetProperty("lr").GetDouble(),
                s.GetProperty("steps").GetInt32(),
                Values(s.GetProperty("lrs"))))],
            TrainerShape = (trainer.GetProperty("batch").GetInt32(), trainer.GetProperty("inputs").GetInt32(),
                trainer.GetProperty("hidden").GetInt32(), trainer.GetProperty("outputs").GetInt32()),
            TrainerX = Values(trainer.GetProperty("x")),
            TrainerY = Values(trainer.GetProperty("y")),
            TrainerInitial = Values(trainer.GetProperty("initial")),
            TrainerRuns = [.. trainer.GetProperty("runs").EnumerateArray().Select(r => new TrainerRun(
                SpecOf(r, every, gamma),
                r.GetProperty("hyper").GetProperty("lr").GetDouble(),
                r.GetProperty("steps").GetInt32(),
                Values(r.GetProperty("losses")),
                Values(r.GetProperty("parameters"))))],
        };
    }

    /// <summary>The OptimizerSpec of a recorded run (its hyper-parameters, decay, schedule and warm-up).</summary>
    private static OptimizerSpec SpecOf(JsonElement run, int every, double gamma)
    {
        var hyper = run.GetProperty("hyper");
        double Hyper(string name, double fallback) => hyper.TryGetProperty(name, out var v) ? v.GetDouble() : fallback;
        var defaults = new OptimizerSpec();
        return new OptimizerSpec
        {
            Kind = OptimizerSpec.ParseKind(run.GetProperty("optimizer").GetString()),
            Momentum = Hyper("momentum", defaults.Momentum),
            Beta1 = Hyper("beta1", defaults.Beta1),
            Beta2 = Hyper("beta2", defaults.Beta2),
            Eps = Hyper("eps", defaults.Eps),
            WeightDecay = run.GetProperty("weight_decay").GetDouble(),
            Schedule = OptimizerSpec.ParseSchedule(run.GetProperty("schedule").GetString()),
            WarmupSteps = run.GetProperty("warmup").GetInt32(),
            StepEvery = every,
            Gamma = gamma,
        };
    }

    private static double[] Values(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetDouble())];
}
