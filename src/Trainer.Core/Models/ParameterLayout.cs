namespace Trainer.Core.Models;

/// <summary>One named tensor inside the flat parameter buffer: rows x cols starting at Offset.</summary>
public sealed record ParameterView(string Name, int Offset, int Rows, int Cols)
{
    public int Length => Rows * Cols;

    public Span<double> Of(Span<double> buffer) => buffer.Slice(Offset, Length);

    public ReadOnlySpan<double> Of(ReadOnlySpan<double> buffer) => buffer.Slice(Offset, Length);

    public Span<T> Of<T>(Span<T> buffer) => buffer.Slice(Offset, Length);

    public ReadOnlySpan<T> Of<T>(ReadOnlySpan<T> buffer) => buffer.Slice(Offset, Length);
}

/// <summary>
/// All of a model's parameters as ONE flat buffer with named views per layer, in PyTorch's
/// state_dict order and Linear layout: w1 (H x D_in), b1 (H), w2 (D_out x H), b2, ...
/// A parameter server owns, slices and sends the buffer as a whole; the views give it meaning.
/// </summary>
public sealed class ParameterLayout
{
    private ParameterLayout(IReadOnlyList<ParameterView> views)
    {
        Views = views;
        Count = views.Count == 0 ? 0 : views[^1].Offset + views[^1].Length;
    }

    public IReadOnlyList<ParameterView> Views { get; }

    /// <summary>Total number of parameters.</summary>
    public int Count { get; }

    public ParameterView this[string name] =>
        Views.FirstOrDefault(v => v.Name == name) ?? throw new KeyNotFoundException($"No parameter named '{name}'; the model has {string.Join(", ", Views.Select(v => v.Name))}.");

    /// <summary>w{l} then b{l} (when biases are on) for each layer l = 1..L.</summary>
    public static ParameterLayout For(ModelSpec spec)
    {
        var views = new List<ParameterView>();
        int offset = 0;
        for (int l = 0; l < spec.LayerCount; l++)
        {
            int fanIn = spec.LayerSizes[l], fanOut = spec.LayerSizes[l + 1];
            views.Add(new ParameterView($"w{l + 1}", offset, fanOut, fanIn));
            offset += fanOut * fanIn;
            if (spec.Bias)
            {
                views.Add(new ParameterView($"b{l + 1}", offset, fanOut, 1));
                offset += fanOut;
            }
        }
        return new ParameterLayout(views);
    }

    /// <summary>Weight view of layer l (1-based).</summary>
    public ParameterView Weight(int layer) => this[$"w{layer}"];

    /// <summary>Bias view of layer l (1-based), or null when the model has no biases.</summary>
    public ParameterView? Bias(int layer) => Views.FirstOrDefault(v => v.Name == $"b{layer}");
}
