using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>The seed job with the TrainingSpec defaults descends as SEED.md says a correct implementation does.</summary>
public class SeedJobTests(ITestOutputHelper output)
{
    [Fact]
    public void SeedJob_DescendsFromTensOfThousandsToAFewHundred()
    {
        var spec = new TrainingSpec().Validate();
        var data = Synthetic.Data(spec.Batch, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed);
        var parameters = Initializer.Create(ParameterLayout.For(spec.Model), spec.Init, spec.Seed);
        var trainer = new LocalTrainer(spec, data, parameters);

        var losses = new double[spec.Steps];
        for (int t = 0; t < spec.Steps; t++) losses[t] = trainer.Step();
        output.WriteLine($"seed job ({spec.Workers} workers): step 1 loss {losses[0]:R}, step {spec.Steps} loss {losses[^1]:R}");

        Assert.InRange(losses[0], 2e4, 6e4);
        Assert.True(losses[^1] < 1000, $"step {spec.Steps} loss {losses[^1]:R} is not a few hundred");
        Assert.True(losses[^1] < losses[0] / 20, $"loss went from {losses[0]:R} to only {losses[^1]:R}");
        Assert.All(losses, l => Assert.True(double.IsFinite(l)));
    }
}
