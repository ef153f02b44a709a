using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;

namespace Trainer.Client;

/// <summary>
/// The data of a job as read from <c>--data</c>: the training rows and, when the files have one, a
/// test set (idx: the t10k files), kept for evaluation; the job trains on <see cref="Train"/>.
/// </summary>
/// <param name="Description">Where the data came from, for the job line: "idx:DIR".</param>
internal sealed record LoadedData(Dataset Train, Dataset? Test, string Description);

/// <summary>
/// <c>--data npy:DIR</c> or <c>--data idx:DIR</c>, read and checked for the model that will train on
/// it (docs/data-and-losses.md): class labels become one-hot rows of the model's output width, and
/// values a job cannot train on are refused here, naming the file, before the cluster is contacted.
/// </summary>
internal static class DataFiles
{
    public const string Allowed = "allowed: npy:DIR (x.npy, y.npy) or idx:DIR (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz])";

    /// <param name="scale">idx only: pixels are bytes × scale; null: bytes / 255.</param>
    public static LoadedData Load(string value, ModelSpec model, double? scale)
    {
        if (value.StartsWith(NpyFiles.Scheme, StringComparison.Ordinal) && value.Length > NpyFiles.Scheme.Length)
        {
            if (scale is not null) throw ScaleOnlyWithIdx(scale.Value);
            var folder = value[NpyFiles.Scheme.Length..];
            return new LoadedData(NpyFiles.LoadData(folder, model), null, value);
        }
        if (value.StartsWith(IdxFiles.Scheme, StringComparison.Ordinal) && value.Length > IdxFiles.Scheme.Length)
        {
            // NOTE: 255 × scale must be finite too, or the brightest pixels would enter training as infinities.
            if (scale is { } s && (!double.IsFinite(255 * s) || s <= 0))
                throw new SpecException("scale", s, "allowed: a finite number greater than 0 (and 255 times it finite), the factor raw pixel bytes are multiplied by (e.g. 0.00392156862745098 = 1/255)");
            var (train, test) = IdxFiles.Load(value[IdxFiles.Scheme.Length..], model.OutputSize, scale);
            return new LoadedData(train, test, value);
        }
        throw new SpecException("data", value, Allowed);
    }

    /// <summary>
    /// Refuses data whose rows do not fit <paramref name="model"/>: <paramref name="inputs"/> per sample,
    /// and <paramref name="targets"/> unless null (inputs alone, for a prediction).
    /// </summary>
    public static void RequireFits(ModelSpec model, string description, int inputs, int? targets)
    {
        if (inputs == model.InputSize && (targets ?? model.OutputSize) == model.OutputSize) return;
        throw new SpecException("model", model.Architecture, targets is { } t
            ? $"the data in {description} has {inputs} inputs and {t} targets per sample, so the model must be {inputs}-...-{t}"
            : $"the data in {description} has {inputs} inputs per sample, so the model's first width must be {inputs}");
    }

    public static SpecException ScaleOnlyWithIdx(double scale) =>
        new("scale", scale, "allowed only with --data idx:DIR (it scales raw pixel bytes; npy and synthetic data are used as they are)");

    /// <summary>A data file's refusal (format or value) as the "data" field's error, naming the file.</summary>
    public static SpecException Refused(string path, FormatException e) => new("data", path, e.Message.TrimEnd('.'));
}
