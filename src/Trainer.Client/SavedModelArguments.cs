using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;

namespace Trainer.Client;

/// <summary>
/// What `trainer evaluate` and `trainer predict` run, as typed: saved weights (--weights npy:DIR, as
/// `train --save` writes them), the model they were trained as, and the split of --data to run them
/// on. The model is the folder's model.json (<see cref="WeightsManifest"/>) where there is one, else
/// --model, --activation, --bias and --loss with train's defaults; an option typed against model.json
/// is refused. Everything is read and checked here, in this process, with the loaders `train` uses;
/// no cluster is involved.
/// </summary>
internal sealed record SavedModelArguments
{
    public const string Train = "train";
    public const string Test = "test";

    public string? Weights { get; init; }
    // The model's options as typed; null: not typed, so model.json's, or else train's default.
    public string? Model { get; init; }
    public string? Activation { get; init; }
    public string? Loss { get; init; }
    public bool? Bias { get; init; }
    public string? Data { get; init; }
    /// <summary>idx data only: raw pixel bytes are multiplied by this; null: divided by 255.</summary>
    public double? Scale { get; init; }
    /// <summary><see cref="Train"/> or <see cref="Test"/>; null: test when the data has a test set, else train.</summary>
    public string? Split { get; init; }

    /// <summary>The model the weights are run as: model.json's, with any typed option checked against it; else the typed options and train's defaults.</summary>
    public ModelSpec ToModelSpec()
    {
        RequireOptions();
        var folder = NpyFiles.Folder("weights", Weights!);
        if (WeightsManifest.ReadModel("weights", folder) is not { } model)
            return ModelSpec.Parse(Model ?? CliOptions.DefaultModel, Activation ?? CliOptions.DefaultActivation, Loss ?? CliOptions.DefaultLoss, Bias ?? false);
        var manifest = Path.Combine(folder, WeightsManifest.FileName);
        // NOTE: typed options are compared as parsed, so "--activation ReLU" or "--model 784-032-10" agree with
        // what was saved. A typed option that disagrees is refused, not obeyed: the weights would run as a model
        // they were not trained as (another loss changes what evaluate reports and what predict's scores are).
        if (Model is not null && !ModelSpec.ParseArchitecture(Model).SequenceEqual(model.LayerSizes))
            throw Disagrees("model", Model, model.Architecture, manifest);
        if (Activation is not null && Activations.Parse(Activation) != model.Activation)
            throw Disagrees("activation", Activation, model.Activation.Name(), manifest);
        if (Loss is not null && Losses.Parse(Loss) != model.Loss)
            throw Disagrees("loss", Loss, model.Loss.Name(), manifest);
        if (Bias is { } bias && bias != model.Bias)
            throw new SpecException("bias", bias ? "true" : "false", $"the weights were trained {(model.Bias ? "with" : "without")} biases ({manifest}); leave --bias out");
        return model;
    }

    private static SpecException Disagrees(string field, string typed, string saved, string manifest) =>
        new(field, typed, $"the weights were trained with --{field} {saved} ({manifest}); leave --{field} out or pass {saved}");

    /// <summary>The weights in the model's flat layout; a missing file, or one of another shape, is refused naming it.</summary>
    public double[] LoadWeights(ModelSpec model)
    {
        RequireOptions();
        var folder = NpyFiles.Folder("weights", Weights!);
        return NpyFiles.LoadParameters("weights", folder, model);
    }

    /// <summary>The split's inputs and targets, checked against the model: what `evaluate` needs.</summary>
    public (string Split, Dataset Rows) LoadRows(ModelSpec model)
    {
        RequireOptions();
        var loaded = DataFiles.Load(Data!, model, Scale);
        DataFiles.RequireFits(model, loaded.Description, loaded.Train.InputSize, loaded.Train.OutputSize);
        var split = Chosen(loaded.Test is not null, loaded.Description);
        return (split, split == Test ? loaded.Test! : loaded.Train);
    }

    /// <summary>
    /// The split's inputs, (count, D_in), checked against the model: what `predict` needs. npy data is
    /// x.npy alone (no y.npy needed); idx data is read whole, as its labels come with its images.
    /// </summary>
    public (string Split, double[] Inputs, int Count) LoadInputs(ModelSpec model)
    {
        RequireOptions();
        var data = Data!;
        if (!data.StartsWith(NpyFiles.Scheme, StringComparison.Ordinal))
        {
            var (split, rows) = LoadRows(model);
            return (split, rows.X, rows.Count);
        }
        if (Scale is { } scale) throw DataFiles.ScaleOnlyWithIdx(scale);
        var x = DataFiles.LoadInputs(NpyFiles.Folder("data", data));
        DataFiles.RequireFits(model, data, x.Inputs, targets: null);
        return (Chosen(hasTest: false, data), x.X, x.Count);
    }

    /// <summary>
    /// The checks that need no file, made before any is read: --weights and --data given, and a known
    /// --split (a misspelt split should not wait for 60,000 images to load).
    /// </summary>
    private void RequireOptions()
    {
        if (Weights is null)
            throw new SpecException("weights", null, "allowed: npy:DIR, a folder of weights as `trainer train --save npy:DIR` writes them (w1.npy, b1.npy, ...)");
        if (Data is null)
            throw new SpecException("data", null, $"{DataFiles.Allowed}, the samples to run the weights on");
        if (Split is not (null or Train or Test))
            throw new SpecException("split", Split, $"allowed: {Train}, {Test}");
    }

    private string Chosen(bool hasTest, string description) => Split switch
    {
        null => hasTest ? Test : Train,
        Test when !hasTest => throw new SpecException("split", Split, $"the data in {description} has no test set (only idx:DIR folders with t10k-* files have one); allowed: {Train}"),
        _ => Split,
    };
}
