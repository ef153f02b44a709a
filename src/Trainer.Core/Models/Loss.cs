namespace Trainer.Core.Models;

/// <summary>
/// Training loss. SSE is the seed's sum over samples and outputs; MSE is its mean over
/// all N x D_out elements (PyTorch's <c>MSELoss()</c> default); CrossEntropy is softmax cross-entropy
/// of the outputs (logits) against target rows, the mean over the N samples (PyTorch's
/// <c>cross_entropy</c> default, see <see cref="SoftmaxCrossEntropy"/>).
/// </summary>
public enum LossKind
{
    Sse,
    Mse,
    CrossEntropy,
}

public static class Losses
{
    public static LossKind Parse(string? value, string field = "loss") => value?.Trim().ToLowerInvariant() switch
    {
        "sse" => LossKind.Sse,
        "mse" => LossKind.Mse,
        "ce" => LossKind.CrossEntropy,
        _ => throw new SpecException(field, value, "allowed: sse, mse, ce"),
    };

    /// <summary>The command-line name: sse, mse, ce.</summary>
    public static string Name(this LossKind loss) => loss switch
    {
        LossKind.CrossEntropy => "ce",
        _ => loss.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// The factor that turns a SUMMED loss (and gradient) over <paramref name="samples"/> samples
    /// into this loss. Workers always compute sums over their shard; the reducer adds the shard
    /// sums in shard order and applies this scale once, so the update equals the single-process
    /// full-batch update for any number of workers (the sample-weighted mean, for MSE and CE: a
    /// shard's mean would weigh a short shard's samples more).
    /// </summary>
    public static double Scale(this LossKind loss, int samples, int outputs) => loss switch
    {
        LossKind.Sse => 1.0,
        LossKind.Mse => 1.0 / ((double)samples * outputs),
        LossKind.CrossEntropy => 1.0 / samples,
        _ => throw new ArgumentOutOfRangeException(nameof(loss)),
    };
}
