namespace Trainer.Core.Optim;

/// <summary>
/// Applies one update to the flat parameter buffer from the full-batch gradient. Optimizers with
/// memory (momentum, Adam) keep it in <see cref="State"/>, a flat buffer the parameter server
/// checkpoints beside the parameters.
/// </summary>
public interface IOptimizer
{
    string Name { get; }

    /// <summary>Optimizer memory, empty for plain SGD.</summary>
    double[] State { get; }

    void Step(Span<double> parameters, ReadOnlySpan<double> gradient);

    /// <summary>The same update out of place: next = update(current, gradient); next may alias current.</summary>
    void Step(ReadOnlySpan<double> current, ReadOnlySpan<double> gradient, Span<double> next);

    /// <summary>The float32 update (--precision float32), out of place; next may alias current.</summary>
    void Step(ReadOnlySpan<float> current, ReadOnlySpan<float> gradient, Span<float> next);
}
