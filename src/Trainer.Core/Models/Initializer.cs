using Trainer.Core.Data;

namespace Trainer.Core.Models;

/// <summary>How weights start. Biases always start at zero.</summary>
public enum InitKind
{
    /// <summary>N(0, 1), unscaled, as in the seed.</summary>
    Normal,
    /// <summary>Xavier/Glorot normal: N(0, 2 / (fan_in + fan_out)).</summary>
    Xavier,
    /// <summary>He/Kaiming normal: N(0, 2 / fan_in).</summary>
    He,
}

public static class Initializer
{
    public static InitKind Parse(string? value, string field = "init") => value?.Trim().ToLowerInvariant() switch
    {
        "normal" => InitKind.Normal,
        "xavier" => InitKind.Xavier,
        "he" => InitKind.He,
        _ => throw new SpecException(field, value, "allowed: normal, xavier, he, or npy:DIR"),
    };

    public static string Name(this InitKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>
    /// Fresh parameters for <paramref name="layout"/>. Each weight tensor l gets its own stream
    /// (seed + offset + l), so adding biases or layers does not shift the draws of earlier layers.
    /// </summary>
    public static double[] Create(ParameterLayout layout, InitKind kind, int seed)
    {
        var parameters = new double[layout.Count];
        Fill(layout, kind, seed, parameters);
        return parameters;
    }

    /// <summary>Writes <see cref="Create"/>'s parameters into <paramref name="parameters"/> (of <paramref name="layout"/>'s size), whatever it held.</summary>
    public static void Fill(ParameterLayout layout, InitKind kind, int seed, Span<double> parameters) =>
        Fill<double>(layout, kind, seed, parameters);

    /// <summary>
    /// <see cref="Fill(ParameterLayout, InitKind, int, Span{double})"/> in precision <typeparamref name="T"/>: for float,
    /// each float64 draw rounded as <c>Precisions.Narrow</c> rounds it, without a float64 copy of the model first.
    /// </summary>
    public static void Fill<T>(ParameterLayout layout, InitKind kind, int seed, Span<T> parameters) where T : unmanaged
    {
        if (parameters.Length != layout.Count)
            throw new ArgumentException($"The layout has {layout.Count} parameters; the destination holds {parameters.Length}.", nameof(parameters));
        parameters.Clear();
        int layer = 0;
        foreach (var view in layout.Views)
        {
            if (!view.Name.StartsWith('w')) continue;
            double std = kind switch
            {
                InitKind.Normal => 1.0,
                InitKind.Xavier => Math.Sqrt(2.0 / (view.Cols + view.Rows)),
                InitKind.He => Math.Sqrt(2.0 / view.Cols),
                _ => throw new ArgumentOutOfRangeException(nameof(kind)),
            };
            Synthetic.Normals(parameters.Slice(view.Offset, view.Length), unchecked(seed + Synthetic.InitStreamOffset + layer), std);
            layer++;
        }
    }
}
