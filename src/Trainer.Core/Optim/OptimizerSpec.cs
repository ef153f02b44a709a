namespace Trainer.Core.Optim;

/// <summary>Which update rule the parameter server applies (<c>--optimizer</c>).</summary>
public enum OptimizerKind
{
    /// <summary>w -= lr·g, the seed's rule.</summary>
    Sgd,
    /// <summary>Heavy-ball momentum, PyTorch's <c>SGD(momentum=μ)</c>: b = μ·b + g; w -= lr·b.</summary>
    Momentum,
    /// <summary>Nesterov momentum, PyTorch's <c>SGD(momentum=μ, nesterov=True)</c>: b = μ·b + g; w -= lr·(g + μ·b).</summary>
    Nesterov,
    /// <summary>Adam (Kingma and Ba), PyTorch's <c>Adam</c>; weight decay adds λ·w to the gradient (L2).</summary>
    Adam,
    /// <summary>AdamW (Loshchilov and Hutter), PyTorch's <c>AdamW</c>: decoupled weight decay w -= lr·λ·w.</summary>
    AdamW,
}

/// <summary>How the learning rate changes over the job's steps (<c>--lr-schedule</c>).</summary>
public enum ScheduleKind
{
    /// <summary>lr at every step (after any warm-up).</summary>
    Constant,
    /// <summary>lr·γ^⌊(t - warmup - 1) / every⌋: multiplied by γ every <see cref="OptimizerSpec.StepEvery"/> steps.</summary>
    Step,
    /// <summary>Cosine annealing from lr to 0 over the steps after the warm-up.</summary>
    Cosine,
}

/// <summary>
/// The optimizer and learning-rate schedule of a job; the learning rate itself is
/// <see cref="Training.TrainingSpec.LearningRate"/>. The defaults are plain SGD at a constant rate,
/// the seed's rule, and PyTorch's defaults for every hyper-parameter.
/// </summary>
public sealed record OptimizerSpec
{
    public OptimizerKind Kind { get; init; } = OptimizerKind.Sgd;
    /// <summary>μ of momentum and Nesterov (PyTorch has no default; 0.9 is the usual one).</summary>
    public double Momentum { get; init; } = 0.9;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;
    /// <summary>λ: L2 (added to the gradient) for sgd, momentum, nesterov and adam; decoupled for adamw.</summary>
    public double WeightDecay { get; init; }
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Constant;
    /// <summary>Steps of linear warm-up (lr·t/warmup at step t ≤ warmup) before the schedule; 0: none.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>The step schedule's period in steps.</summary>
    public int StepEvery { get; init; } = 1000;
    /// <summary>The step schedule's factor γ.</summary>
    public double Gamma { get; init; } = 0.1;

    /// <summary>Plain SGD at a constant rate: the seed job's optimizer.</summary>
    public static OptimizerSpec Sgd { get; } = new();

    /// <summary>Optimizer-state values each parameter carries: none for SGD, one buffer for momentum, two (m, v) for Adam.</summary>
    public int StateSlots => Kind switch
    {
        OptimizerKind.Sgd => 0,
        OptimizerKind.Momentum or OptimizerKind.Nesterov => 1,
        _ => 2,
    };

    /// <summary>Lower-case name as the CLI spells it.</summary>
    public string Name => Kind switch
    {
        OptimizerKind.AdamW => "adamw",
        _ => Kind.ToString().ToLowerInvariant(),
    };

    /// <summary>Throws <see cref="SpecException"/> naming the first field that is not allowed; <paramref name="steps"/> is the job's step count.</summary>
    public OptimizerSpec Validate(int steps)
    {
        if (!Enum.IsDefined(Kind))
            throw new SpecException("optimizer", (int)Kind, "allowed: sgd, momentum, nesterov, adam, adamw");
        if (!double.IsFinite(Momentum) || Momentum < 0 || Momentum >= 1)
            throw new SpecException("momentum", Momentum, "allowed: a number from 0 up to (not including) 1, e.g. 0.9");
        if (!double.IsFinite(Beta1) || Beta1 < 0 || Beta1 >= 1)
            throw new SpecException("beta1", Beta1, "allowed: a number from 0 up to (not including) 1, e.g. 0.9");
        if (!double.IsFinite(Beta2) || Beta2 < 0 || Beta2 >= 1)
            throw new SpecException("beta2", Beta2, "allowed: a number from 0 up to (not including) 1, e.g. 0.999");
        if (!double.IsFinite(Eps) || Eps <= 0)
            throw new SpecException("eps", Eps, "allowed: a finite number greater than 0, e.g. 1e-8");
        if (!double.IsFinite(WeightDecay) || WeightDecay < 0)
            throw new SpecException("weight-decay", WeightDecay, "allowed: a finite number >= 0 (0 turns it off)");
        if (!Enum.IsDefined(Schedule))
            throw new SpecException("lr-schedule", (int)Schedule, "allowed: constant, step, cosine");
        if (WarmupSteps < 0 || WarmupSteps > steps)
            throw new SpecException("warmup-steps", WarmupSteps, $"allowed: a whole number of steps from 0 to the job's {steps}");
        if (StepEvery <= 0)
            throw new SpecException("lr-step-every", StepEvery, "allowed: a whole number of steps greater than 0");
        if (!double.IsFinite(Gamma) || Gamma <= 0 || Gamma > 1)
            throw new SpecException("lr-gamma", Gamma, "allowed: a number greater than 0 and at most 1, e.g. 0.1");
        return this;
    }

    public static OptimizerKind ParseKind(string? value, string field = "optimizer") => value?.Trim().ToLowerInvariant() switch
    {
        "sgd" => OptimizerKind.Sgd,
        "momentum" => OptimizerKind.Momentum,
        "nesterov" => OptimizerKind.Nesterov,
        "adam" => OptimizerKind.Adam,
        "adamw" => OptimizerKind.AdamW,
        _ => throw new SpecException(field, value, "allowed: sgd, momentum, nesterov, adam, adamw"),
    };

    public static ScheduleKind ParseSchedule(string? value, string field = "lr-schedule") => value?.Trim().ToLowerInvariant() switch
    {
        "constant" => ScheduleKind.Constant,
        "step" => ScheduleKind.Step,
        "cosine" => ScheduleKind.Cosine,
        _ => throw new SpecException(field, value, "allowed: constant, step, cosine"),
    };
}
