namespace Trainer.Core.Models;

/// <summary>The argument checks every <see cref="IGradientModel"/> makes once per call, before its kernels run.</summary>
internal static class ModelArguments
{
    public static void Check(ModelSpec spec, ParameterLayout layout, int parameters, int x, int y, int samples)
    {
        CheckInputs(spec, layout, parameters, x, samples);
        if (y < (long)samples * spec.OutputSize)
            throw new ArgumentException($"y has {y} elements, {samples} samples of {spec.OutputSize} outputs need {(long)samples * spec.OutputSize}.", nameof(y));
    }

    /// <summary>The checks of a forward pass alone (a prediction): the parameters and the inputs.</summary>
    public static void CheckInputs(ModelSpec spec, ParameterLayout layout, int parameters, int x, int samples)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(samples);
        if (parameters != layout.Count)
            throw new ArgumentException($"parameters has {parameters} elements, the model {spec.Architecture} has {layout.Count}.", nameof(parameters));
        if (x < (long)samples * spec.InputSize)
            throw new ArgumentException($"x has {x} elements, {samples} samples of {spec.InputSize} inputs need {(long)samples * spec.InputSize}.", nameof(x));
    }
}
