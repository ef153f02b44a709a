using System.Runtime.InteropServices;

namespace Trainer.Core.Optim;

/// <summary>An optimizer step in the job's precision, for code generic over the element type.</summary>
public static class OptimizerSteps
{
    /// <summary>parameters ← update(parameters, gradient), in place; T is double or float.</summary>
    public static void Step<T>(this IOptimizer optimizer, Span<T> parameters, ReadOnlySpan<T> gradient) where T : unmanaged
    {
        if (typeof(T) == typeof(double))
            optimizer.Step(MemoryMarshal.Cast<T, double>(parameters), MemoryMarshal.Cast<T, double>(gradient), MemoryMarshal.Cast<T, double>(parameters));
        else if (typeof(T) == typeof(float))
            optimizer.Step(MemoryMarshal.Cast<T, float>(parameters), MemoryMarshal.Cast<T, float>(gradient), MemoryMarshal.Cast<T, float>(parameters));
        else
            throw new NotSupportedException($"{optimizer.Name} steps double or float parameters, not {typeof(T).Name}.");
    }
}
