using System.Numerics.Tensors;

namespace Trainer.Core.Optim;

/// <summary>Plain SGD, the seed's update: w -= lr * g.</summary>
public sealed class Sgd : IOptimizer
{
    public Sgd(double learningRate)
    {
        if (!double.IsFinite(learningRate) || learningRate <= 0)
            throw new SpecException("lr", learningRate, "allowed: a finite number greater than 0");
        LearningRate = learningRate;
    }

    public double LearningRate { get; }

    public string Name => "sgd";

    public double[] State => [];

    public void Step(Span<double> parameters, ReadOnlySpan<double> gradient)
    {
        if (parameters.Length != gradient.Length)
            throw new ArgumentException($"gradient has {gradient.Length} elements, parameters {parameters.Length}.", nameof(gradient));
        // NOTE: MultiplyAdd is not fused (FusedMultiplyAdd is), so this rounds exactly like numpy's w - lr*g.
        TensorPrimitives.MultiplyAdd(gradient, -LearningRate, parameters, parameters);
    }
}
