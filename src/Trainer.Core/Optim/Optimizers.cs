using System.Numerics;

namespace Trainer.Core.Optim;

/// <summary>Builds the update rule an <see cref="OptimizerSpec"/> names.</summary>
public static class Optimizers
{
    /// <summary>
    /// The optimizer of <paramref name="spec"/> at base rate <paramref name="learningRate"/> for a job of
    /// <paramref name="steps"/> steps; T is double or float. Checks the spec and the rate once, here.
    /// </summary>
    public static Optimizer<T> Create<T>(OptimizerSpec spec, double learningRate, int steps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (typeof(T) != typeof(double) && typeof(T) != typeof(float))
            throw new NotSupportedException($"Optimizers step double or float parameters, not {typeof(T).Name}.");
        if (!double.IsFinite(learningRate) || learningRate <= 0)
            throw new SpecException("lr", learningRate, "allowed: a finite number greater than 0, e.g. 1e-5");
        if (steps <= 0)
            throw new SpecException("steps", steps, "allowed: a whole number of steps greater than 0");
        spec.Validate(steps);
        return spec.Kind switch
        {
            OptimizerKind.Sgd => new Sgd<T>(spec, learningRate, steps),
            OptimizerKind.Momentum => new Momentum<T>(spec, learningRate, steps, nesterov: false),
            OptimizerKind.Nesterov => new Momentum<T>(spec, learningRate, steps, nesterov: true),
            OptimizerKind.Adam => new Adam<T>(spec, learningRate, steps, decoupled: false),
            OptimizerKind.AdamW => new Adam<T>(spec, learningRate, steps, decoupled: true),
            _ => throw new SpecException("optimizer", (int)spec.Kind, "allowed: sgd, momentum, nesterov, adam, adamw"),
        };
    }

    /// <summary>
    /// Checks that an optimizer state buffer fits <paramref name="parameters"/> parameters: StateSlots values
    /// per parameter, slot after slot (empty for SGD); every holder of state (a range, a split worker, a
    /// trainer) checks it here, with one message.
    /// </summary>
    public static void CheckState(OptimizerSpec spec, int stateLength, int parameters, string paramName)
    {
        if (stateLength != spec.StateSlots * parameters)
            throw new ArgumentException($"{spec.Name} keeps {spec.StateSlots} state value(s) per parameter: the state has {stateLength} values for {parameters} parameters.", paramName);
    }
}
