using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Core.Tests.Optim;

/// <summary>
/// LocalTrainer with Adam (L2 decay, cosine schedule after a warm-up) and with momentum (step
/// schedule) trains a small sigmoid MLP like PyTorch 1.13 does with autograd and torch.optim
/// (tests/reference/optim/make_torch_values.py): every step's loss and the final weights, with one
/// and two data-parallel workers and with the first layer split over two.
/// </summary>
/// <remarks>
/// To rounding only: torch's matrix products and fused kernels round differently from ours, and
/// Adam divides by sqrt(v), which amplifies a relative difference in small gradients. The losses
/// came within a few 1e-16 of torch's when this was written; the tolerance leaves margin for other
/// GEMM kernels and still catches any change of rule (perturbing 1−β1 by 1e-12 already shows).
/// </remarks>
public class PyTorchTrainerTests
{
    private const double Tolerance = 1e-12;
    private static readonly TorchOptimValues Torch = TorchOptimValues.Instance;

    [Theory]
    [InlineData("adam", 1, Parallelism.Data)]
    [InlineData("adam", 2, Parallelism.Data)]
    [InlineData("adam", 2, Parallelism.SplitFirstLayer)]
    [InlineData("momentum", 1, Parallelism.Data)]
    [InlineData("momentum", 2, Parallelism.Data)]
    [InlineData("momentum", 2, Parallelism.SplitFirstLayer)]
    public void LocalTrainer_TrainsLikePyTorch(string optimizer, int workers, Parallelism parallelism)
    {
        var run = Torch.TrainerRuns.Single(r => r.Spec.Name == optimizer);
        var (batch, inputs, hidden, outputs) = Torch.TrainerShape;
        var spec = new TrainingSpec
        {
            Model = new ModelSpec([inputs, hidden, outputs]),   // sigmoid, sum of squares, no biases
            Batch = batch, Workers = workers, Steps = run.Steps, LearningRate = run.LearningRate,
            Parallelism = parallelism, Optimizer = run.Spec,
        };
        var trainer = new LocalTrainer(spec, new Dataset(Torch.TrainerX, Torch.TrainerY, batch, inputs, outputs), (double[])Torch.TrainerInitial.Clone());

        for (int t = 0; t < run.Steps; t++)
        {
            double loss = trainer.Step(), error = TestArrays.RelativeDifference(loss, run.Losses[t]);
            Assert.True(error < Tolerance, $"step {t + 1}: loss {loss:R}, torch {run.Losses[t]:R} ({error:E2})");
        }
        double parameters = TestArrays.MaxRelativeDifference(trainer.Parameters, run.Parameters);
        Assert.True(parameters < Tolerance, $"final weights differ from torch's by {parameters:E2}");
        Assert.NotEqual(Torch.TrainerInitial, trainer.Parameters);
    }
}
