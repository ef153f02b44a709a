using System.Globalization;

namespace Trainer.Core.Models;

/// <summary>
/// A multi-layer perceptron: layer widths from input to output ("1000-100-10"), the hidden
/// activation, the loss, and whether layers have biases (the seed has none).
/// </summary>
public sealed record ModelSpec
{
    /// <summary>Largest parameter count a model may have (one flat buffer, indexed by int).</summary>
    public const long MaxParameters = 1L << 30;

    public ModelSpec(IReadOnlyList<int> layerSizes, Activation activation = Activation.Sigmoid, LossKind loss = LossKind.Sse, bool bias = false)
    {
        LayerSizes = Validate(layerSizes, bias);
        if (loss == LossKind.CrossEntropy && LayerSizes[^1] < 2)
            throw new SpecException("loss", loss.Name(), $"allowed only for a model with at least 2 outputs (classes); {Architecture} has 1, whose softmax is always 1");
        Activation = activation;
        Loss = loss;
        Bias = bias;
    }

    /// <summary>The seed's 1000-100-10 sigmoid network, no biases, summed squared error.</summary>
    public static ModelSpec Seed { get; } = new([1000, 100, 10]);

    public IReadOnlyList<int> LayerSizes { get; }
    public Activation Activation { get; }
    public LossKind Loss { get; }
    public bool Bias { get; }

    public int InputSize => LayerSizes[0];
    public int OutputSize => LayerSizes[^1];
    public int LayerCount => LayerSizes.Count - 1;

    /// <summary>"1000-100-10".</summary>
    public string Architecture => string.Join('-', LayerSizes);

    /// <summary>
    /// The model its options' text describes ("1000-100-10", "relu", "ce", biases or not), as the CLI and
    /// saved weights' model.json give it; a value not allowed is refused naming its field (model, activation, loss).
    /// </summary>
    public static ModelSpec Parse(string? architecture, string? activation, string? loss, bool bias) =>
        new(ParseArchitecture(architecture), Activations.Parse(activation), Losses.Parse(loss), bias);

    /// <summary>Parses "1000-100-10" (at least two positive widths separated by '-').</summary>
    public static IReadOnlyList<int> ParseArchitecture(string? text, string field = "model")
    {
        const string allowed = "allowed: two or more positive layer widths joined by '-', e.g. 1000-100-10";
        if (string.IsNullOrWhiteSpace(text)) throw new SpecException(field, text, allowed);
        var parts = text.Split('-');
        var sizes = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out sizes[i]) || sizes[i] <= 0)
                throw new SpecException(field, text, allowed);
        if (sizes.Length < 2) throw new SpecException(field, text, allowed);
        return sizes;
    }

    public long ParameterCount()
    {
        long count = 0;
        for (int l = 0; l < LayerCount; l++)
            count += (long)LayerSizes[l + 1] * LayerSizes[l] + (Bias ? LayerSizes[l + 1] : 0);
        return count;
    }

    public bool Equals(ModelSpec? other) =>
        other is not null && LayerSizes.SequenceEqual(other.LayerSizes)
        && Activation == other.Activation && Loss == other.Loss && Bias == other.Bias;

    public override int GetHashCode() => HashCode.Combine(Architecture, Activation, Loss, Bias);

    public override string ToString() =>
        $"{Architecture} {Activation.Name()} {Loss.Name()}{(Bias ? " bias" : "")}";

    private static int[] Validate(IReadOnlyList<int> sizes, bool bias)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        var text = string.Join('-', sizes);
        if (sizes.Count < 2 || sizes.Any(s => s <= 0))
            throw new SpecException("model", text, "allowed: two or more positive layer widths, e.g. 1000-100-10");
        long count = 0;
        for (int l = 0; l + 1 < sizes.Count; l++) count += (long)sizes[l + 1] * sizes[l] + (bias ? sizes[l + 1] : 0);
        if (count > MaxParameters)
            throw new SpecException("model", text, $"the model would have {count} parameters; at most {MaxParameters} are allowed");
        return [.. sizes];
    }
}
