using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;

namespace Trainer.Client;

/// <summary>
/// Data and weights in numpy's format, for interop with Python users: samples as ROWS
/// (x.npy is N x D_in, y.npy is N x D_out or N class labels); weights in PyTorch's Linear layout (w1.npy is H x D_in).
/// </summary>
internal static partial class NpyFiles
{
    public const string Scheme = "npy:";

    /// <summary>The folder of an "npy:DIR" argument, or a <see cref="SpecException"/> naming <paramref name="field"/>.</summary>
    public static string Folder(string field, string value)
    {
        if (!value.StartsWith(Scheme, StringComparison.Ordinal) || value.Length == Scheme.Length)
            throw new SpecException(field, value, "allowed: npy:DIR");
        return value[Scheme.Length..];
    }

    /// <summary>
    /// Reads w{l}.npy (and b{l}.npy with biases) into a flat buffer in the model's layout. A missing file,
    /// a file of another shape, and a weight or bias file the model has no place for (b1.npy without
    /// --bias, w3.npy beside a 2-layer model) are refused as <paramref name="field"/>, naming the file.
    /// </summary>
    public static double[] LoadParameters(string field, string folder, ModelSpec model)
    {
        var layout = ParameterLayout.For(model);
        RefuseStrayParameters(field, folder, model, layout);
        var parameters = new double[layout.Count];
        foreach (var view in layout.Views)
        {
            var file = view.Name + ".npy";
            var array = Read(field, folder, file);
            int[] expected = ShapeOf(view);
            if (!array.Shape.SequenceEqual(expected))
                throw new SpecException(field, Path.Combine(folder, file),
                    $"its shape is ({string.Join(", ", array.Shape)}); the model {model.Architecture} needs ({string.Join(", ", expected)})");
            // A NaN weight makes every loss NaN: the job would say it diverged, and evaluate would score nonsense.
            try
            {
                FiniteValues.Require(array.Data, expected.Length == 2 ? expected[1] : 1, Path.Combine(folder, file));
            }
            catch (DataValueException e)
            {
                throw new SpecException(field, Path.Combine(folder, file), e.Message.TrimEnd('.'));
            }
            array.Data.CopyTo(view.Of(parameters.AsSpan()));
        }
        return parameters;
    }

    // NOTE: without this, weights saved with --bias and loaded without it would load their w files
    // and silently drop the biases: the model would run, with other numbers than were trained.
    private static void RefuseStrayParameters(string field, string folder, ModelSpec model, ParameterLayout layout)
    {
        if (!Directory.Exists(folder)) return; // Read names the first missing file.
        if (StrayParameterFiles(folder, layout).FirstOrDefault() is { } path)
            throw new SpecException(field, path, Path.GetFileName(path).StartsWith('b') && !model.Bias
                ? $"the model {model.Architecture} has no biases; pass --bias if the weights were trained with it"
                : $"the model {model.Architecture} has {model.LayerCount} layers, whose files are {string.Join(", ", layout.Views.Select(v => v.Name + ".npy"))}; pass the --model the weights were trained with");
    }

    /// <summary>The weight and bias files in <paramref name="folder"/> (w1.npy, b3.npy, ...) that <paramref name="layout"/> has no place for, by path, in name order.</summary>
    private static IEnumerable<string> StrayParameterFiles(string folder, ParameterLayout layout)
    {
        var names = layout.Views.Select(v => v.Name + ".npy").ToHashSet();
        return Directory.EnumerateFiles(folder, "*.npy").Where(path => IsParameterFile(Path.GetFileName(path)) && !names.Contains(Path.GetFileName(path)))
            .Order(StringComparer.Ordinal);
    }

    /// <summary>Whether <paramref name="fileName"/> is a weight or bias file's name: w1.npy, b2.npy, ...</summary>
    private static bool IsParameterFile(string fileName) => ParameterFileName().IsMatch(fileName);

    [System.Text.RegularExpressions.GeneratedRegex(@"^[wb][1-9][0-9]*\.npy$")]
    private static partial System.Text.RegularExpressions.Regex ParameterFileName();

    /// <summary>numpy's shape of a parameter file: (rows, cols) for a weight, (rows,) for a bias.</summary>
    private static int[] ShapeOf(ParameterView view) => view.Name.StartsWith('b') ? [view.Rows] : [view.Rows, view.Cols];

    /// <summary>
    /// Creates the folder up front and checks it can take the files, so a bad --save fails before training
    /// rather than after: writable, and no weight file's or the manifest's name taken by a folder.
    /// </summary>
    public static void PrepareSaveFolder(string folder)
    {
        try
        {
            Directory.CreateDirectory(folder);
            var probe = Path.Combine(folder, ".trainer-write-test");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SpecException("save", $"npy:{folder}", $"the folder must be writable ({e.Message})");
        }
        foreach (var path in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(path);
            if (name == WeightsManifest.FileName || IsParameterFile(name))
                throw new SpecException("save", $"npy:{folder}", $"{path} is a folder, where the weights' files go; remove it or save elsewhere");
        }
    }

    /// <summary>
    /// Writes the model's w{l}.npy (and b{l}.npy) into <paramref name="folder"/>, each under a temporary name
    /// first and then renamed into place, and removes the weight files of another model left there (a folder
    /// saved into again by a smaller model, or one without biases), which the folder's readers would otherwise
    /// refuse or take for this model's.
    /// </summary>
    /// <returns>The earlier model's files it removed, by name.</returns>
    public static string[] SaveParameters(string folder, ModelSpec model, ReadOnlySpan<double> parameters)
    {
        Directory.CreateDirectory(folder);
        var layout = ParameterLayout.For(model);
        var views = layout.Views;
        foreach (var view in views)
        {
            using var stream = File.Create(Path.Combine(folder, view.Name + ".npy.tmp"));
            Npy.Write(stream, view.Of(parameters), ShapeOf(view));
        }
        foreach (var view in views)
            File.Move(Path.Combine(folder, view.Name + ".npy.tmp"), Path.Combine(folder, view.Name + ".npy"), overwrite: true);
        var stray = StrayParameterFiles(folder, layout).ToArray();
        foreach (var path in stray) File.Delete(path);
        return [.. stray.Select(path => Path.GetFileName(path))];
    }

    private static NpyArray Read(string field, string folder, string file)
    {
        var path = Path.Combine(folder, file);
        if (!File.Exists(path))
            throw new SpecException(field, $"npy:{folder}", $"{path} does not exist; the folder must hold {file}");
        try
        {
            using var stream = File.OpenRead(path);
            return Npy.Read(stream, path);
        }
        catch (NpyFormatException e)
        {
            throw new SpecException(field, path, e.Message.TrimEnd('.'));
        }
    }
}
