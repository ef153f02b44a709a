using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>The seed job (1000-100-10, batch 64, 3000 steps, seed 0, two shards) in float32 against float64.</summary>
public class Float32SeedJobTests(ITestOutputHelper output)
{
    // The issue's figure: "losses within 1e-4 relative of float64 on the seed job", at every step.
    [Fact]
    public void Float32SeedJob_LossesStayWithin1e4RelativeOfFloat64()
    {
        var spec = new TrainingSpec().Validate();
        var f64 = Run(spec);
        var f32 = Run(spec with { Precision = Precision.Float32 });

        double worst = 0;
        int firstOver = -1;
        for (int t = 0; t < spec.Steps; t++)
        {
            double relative = Math.Abs(f32[t] - f64[t]) / f64[t];
            worst = Math.Max(worst, relative);
            if (relative >= 1e-4 && firstOver < 0) firstOver = t + 1;
        }
        output.WriteLine($"worst relative loss difference over {spec.Steps} steps: {worst:E3}; first step at or over 1e-4: {(firstOver < 0 ? "none" : firstOver)}");
        output.WriteLine($"step 1: {f64[0]:R} vs {f32[0]:R}; step {spec.Steps}: {f64[^1]:R} vs {f32[^1]:R}");

        // Measured: the worst step is 1.1e-5 relative (the issue's figure is 1e-4), step 3000 515.37752 vs 515.37785.
        Assert.True(worst < 1e-4, $"step {firstOver} is the first at or over 1e-4 relative from float64 (worst {worst:E2})");
    }

    private static double[] Run(TrainingSpec spec)
    {
        var data = Synthetic.Data(spec.Batch, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed);
        var trainer = new LocalTrainer(spec, data, Initializer.Create(ParameterLayout.For(spec.Model), spec.Init, spec.Seed));
        var losses = new double[spec.Steps];
        for (int t = 0; t < spec.Steps; t++) losses[t] = trainer.Step();
        return losses;
    }
}
