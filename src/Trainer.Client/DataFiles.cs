using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Grains;

namespace Trainer.Client;

/// <summary>
/// The data of a job as read from <c>--data</c>: the training rows and, when the files have one, a
/// test set (idx: the t10k files), kept for evaluation; the job trains on <see cref="Train"/>.
/// </summary>
/// <param name="Description">Where the data came from, for the job line: "idx:DIR".</param>
internal sealed record LoadedData(Dataset Train, Dataset? Test, string Description);

/// <summary>
/// <c>--data npy:DIR</c> or <c>--data idx:DIR</c>, read and checked for the model that will train on
/// it (docs/data-and-losses.md) by <see cref="DataFolders"/>, the reader the silos use for data that stays
/// on them: values a job cannot train on are refused here, naming the file, before the cluster is contacted.
/// </summary>
internal static class DataFiles
{
    public const string Allowed = DataFolders.Allowed;

    /// <param name="scale">idx only: pixels are bytes × scale; null: bytes / 255.</param>
    public static LoadedData Load(string value, ModelSpec model, double? scale)
    {
        using var opened = Open(value, model, scale);
        // Copied out as float64 rows (what an upload sends) before the files are handed back.
        return new LoadedData(opened.Train.ToDataset(), opened.Test?.ToDataset(), value);
    }

    /// <summary>The folder's files opened and checked, their rows read in place until disposed (a job's upload reads them a chunk at a time).</summary>
    /// <param name="field">The option the folder was given by, which its refusals name ("test" for --test).</param>
    public static OpenedData Open(string value, ModelSpec model, double? scale, string field = "data") => DataFolders.Open(value, model, scale, new StoredFiles(), field);

    /// <summary>x.npy of <paramref name="folder"/> alone, checked as for training, as float64 rows (N, D_in).</summary>
    public static (double[] X, int Count, int Inputs) LoadInputs(string folder)
    {
        var files = new StoredFiles();
        using var opened = new OpenedData(files, $"{DataFolders.NpyScheme}{folder}");
        var x = DataFolders.OpenInputs(opened, folder, files);
        var values = new double[(long)x.Rows * x.Columns];
        x.Read<double>(0, values);
        return (values, x.Rows, x.Columns);
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

    public static SpecException ScaleOnlyWithIdx(double scale) => DataFolders.ScaleOnlyWithIdx(scale);
}
