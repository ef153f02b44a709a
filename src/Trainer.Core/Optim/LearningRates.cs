namespace Trainer.Core.Optim;

/// <summary>The learning rate of each step: linear warm-up, then the spec's schedule.</summary>
public static class LearningRates
{
    /// <summary>
    /// The learning rate of step t = <paramref name="step"/> (1-based) of a job of T =
    /// <paramref name="steps"/> steps, with W = <see cref="OptimizerSpec.WarmupSteps"/>:
    /// <list type="bullet">
    /// <item>t ≤ W (warm-up): lr·(t/W), so step W has exactly lr;</item>
    /// <item>constant: lr;</item>
    /// <item>step: lr·γ^⌊(t−W−1)/StepEvery⌋, PyTorch's StepLR(step_size=StepEvery, gamma=γ) after the warm-up;</item>
    /// <item>cosine: lr·(1+cos(π·(t−W−1)/(T−W)))/2 over the T−W steps after the warm-up, PyTorch's
    /// CosineAnnealingLR(T_max=T−W, eta_min=0); the first has lr, the last lr·(1+cos(π·(T−W−1)/(T−W)))/2 &gt; 0.</item>
    /// </list>
    /// </summary>
    /// <remarks>
    /// Closed forms, written in the order PyTorch's LambdaLR computes base_lr·λ(epoch) (epoch = t−1), so a
    /// step's rate depends on t alone: a job resumed at step k gets the rates of an uninterrupted one.
    /// StepLR and CosineAnnealingLR themselves update recursively and agree with these to rounding.
    /// </remarks>
    public static double At(OptimizerSpec spec, double lr, int steps, int step)
    {
        if (step < 1 || step > steps)
            throw new ArgumentOutOfRangeException(nameof(step), step, $"Steps are numbered from 1 to the job's {steps}.");
        int warmup = spec.WarmupSteps;
        if (step <= warmup) return lr * ((double)step / warmup);
        int after = step - warmup - 1;   // 0 at the first step after the warm-up
        return spec.Schedule switch
        {
            ScheduleKind.Constant => lr,
            ScheduleKind.Step => lr * Math.Pow(spec.Gamma, after / spec.StepEvery),
            ScheduleKind.Cosine => lr * (1 + Math.Cos(Math.PI * after / (steps - warmup))) / 2,
            _ => throw new SpecException("lr-schedule", (int)spec.Schedule, "allowed: constant, step, cosine"),
        };
    }
}
