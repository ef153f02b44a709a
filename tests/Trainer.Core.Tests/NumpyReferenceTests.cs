using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// LocalTrainer against an independent numpy run of the seed loop (tests/reference/seed/make_reference.py):
/// same data and initial weights, every step's loss and the final weights.
/// </summary>
public class NumpyReferenceTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-9;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void LocalTrainer_ReproducesNumpyLossesAndFinalWeights(int workers)
    {
        var x = Reference.ReadNpy("seed", "x.npy");
        var y = Reference.ReadNpy("seed", "y.npy");
        var w1 = Reference.ReadNpy("seed", "w1.npy");
        var w2 = Reference.ReadNpy("seed", "w2.npy");
        var losses = Reference.ReadNpy("seed", "losses.npy").Data;
        var model = new ModelSpec([x.Shape[1], w1.Shape[0], y.Shape[1]]);
        Assert.Equal([model.OutputSize, w1.Shape[0]], w2.Shape);

        var spec = new TrainingSpec { Model = model, Batch = x.Shape[0], Steps = losses.Length, Workers = workers }.Validate();
        var trainer = new LocalTrainer(spec, new Dataset(x.Data, y.Data, x.Shape[0], x.Shape[1], y.Shape[1]), [.. w1.Data, .. w2.Data]);

        double worst = 0;
        for (int t = 0; t < losses.Length; t++)
        {
            double loss = trainer.Step();
            double error = TestArrays.RelativeDifference(loss, losses[t]);
            worst = Math.Max(worst, error);
            Assert.True(error < Tolerance, $"step {t + 1}: loss {loss:R}, numpy {losses[t]:R} (relative difference {error:E2})");
        }

        var layout = ParameterLayout.For(model);
        double dw1 = TestArrays.MaxRelativeDifference(layout.Weight(1).Of(trainer.Parameters.AsSpan()), Reference.ReadNpy("seed", "w1_final.npy").Data);
        double dw2 = TestArrays.MaxRelativeDifference(layout.Weight(2).Of(trainer.Parameters.AsSpan()), Reference.ReadNpy("seed", "w2_final.npy").Data);
        output.WriteLine($"{workers} workers, {losses.Length} steps: worst loss difference {worst:E2}, final w1 {dw1:E2}, w2 {dw2:E2}");
        Assert.True(dw1 < Tolerance, $"final w1 differs from numpy by {dw1:E2} (relative to its largest entry)");
        Assert.True(dw2 < Tolerance, $"final w2 differs from numpy by {dw2:E2} (relative to its largest entry)");
    }
}
