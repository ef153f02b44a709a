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

    public void Step(Span<double> parameters, ReadOnlySpan<double> gradient) => Step(parameters, gradient, parameters);

    /// <summary>
    /// next = current - lr * g, out of place (next may be current). The same operation per element
    /// as the in-place update, so both give the same bits.
    /// </summary>
    public void Step(ReadOnlySpan<double> current, ReadOnlySpan<double> gradient, Span<double> next)
    {
        if (current.Length != gradient.Length || next.Length != current.Length)
            throw new ArgumentException($"gradient has {gradient.Length} elements, parameters {current.Length}, destination {next.Length}.", nameof(gradient));
        // NOTE: MultiplyAdd is not fused (FusedMultiplyAdd is), so this rounds exactly like numpy's w - lr*g.
        TensorPrimitives.MultiplyAdd(gradient, -LearningRate, current, next);
    }

    /// <summary>The float32 update: lr is rounded to float once, then next = current + g * (-lr) in float.</summary>
    public void Step(ReadOnlySpan<float> current, ReadOnlySpan<float> gradient, Span<float> next)
    {
        if (current.Length != gradient.Length || next.Length != current.Length)
            throw new ArgumentException($"gradient has {gradient.Length} elements, parameters {current.Length}, destination {next.Length}.", nameof(gradient));
        TensorPrimitives.MultiplyAdd(gradient, -(float)LearningRate, current, next);
    }
}
