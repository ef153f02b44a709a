using System.Text.Json;
using System.Text.Json.Serialization;
using Trainer.Core;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Client;

/// <summary>
/// model.json beside saved weights: the model they were trained as (--model, --activation, --bias,
/// --loss) and where they came from (job, step, precision), so `evaluate`, `predict` need only
/// --weights and --data. It describes the model, not the data: --scale is the data's, given again.
/// A folder without it (weights written by numpy, say) still loads with the options typed.
/// </summary>
internal sealed record WeightsManifest
{
    public const string FileName = "model.json";
    /// <summary>The format's name and version; a reader refuses any other, rather than guess at its fields.</summary>
    public const string Format = "trainer-weights/1";

    [JsonPropertyName("format")] public string? FileFormat { get; init; }
    [JsonPropertyName("model")] public string? Model { get; init; }
    [JsonPropertyName("activation")] public string? Activation { get; init; }
    [JsonPropertyName("bias")] public bool? Bias { get; init; }
    [JsonPropertyName("loss")] public string? Loss { get; init; }
    // Provenance only: nothing reads these back.
    [JsonPropertyName("precision")] public string? Precision { get; init; }
    [JsonPropertyName("job")] public string? Job { get; init; }
    [JsonPropertyName("step")] public int? Step { get; init; }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public static WeightsManifest Of(TrainingSpec spec, string job, int? step) => new()
    {
        FileFormat = Format,
        Model = spec.Model.Architecture,
        Activation = spec.Model.Activation.Name(),
        Bias = spec.Model.Bias,
        Loss = spec.Model.Loss.Name(),
        Precision = spec.Precision.Name(),
        Job = job,
        Step = step,
    };

    public void Write(string folder) =>
        File.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(this, Indented) + "\n");

    /// <summary>The model the folder's manifest gives, or null when it has none; one that cannot be read as this format is refused as <paramref name="field"/>, naming the file.</summary>
    public static ModelSpec? ReadModel(string field, string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        WeightsManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<WeightsManifest>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw Refused(field, path, $"it cannot be read as this format's JSON ({e.Message.TrimEnd('.')})");
        }
        if (manifest?.FileFormat != Format)
            throw Refused(field, path, $"its \"format\" is {Quoted(manifest?.FileFormat)}; this trainer reads \"{Format}\"");
        if (manifest is not { Model: { } model, Activation: { } activation, Bias: { } bias, Loss: { } loss })
            throw Refused(field, path, "it must give \"model\", \"activation\", \"bias\" and \"loss\"");
        try
        {
            return ModelSpec.Parse(model, activation, loss, bias);
        }
        catch (SpecException e)
        {
            throw Refused(field, path, $"its \"{e.Field}\" is {Quoted(e.Value)} ({e.Allowed})");
        }
    }

    private static SpecException Refused(string field, string path, string why) =>
        new(field, path, $"{why}; delete the file to give the model's options by hand");

    private static string Quoted(string? value) => value is null ? "missing" : $"\"{value}\"";
}
