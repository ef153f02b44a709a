using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;

namespace Trainer.Client;

/// <summary>
/// Data and weights in numpy's format, for interop with Python users: samples as ROWS
/// (x.npy is N x D_in, y.npy is N x D_out or N class labels); weights in PyTorch's Linear layout (w1.npy is H x D_in).
/// </summary>
internal static class NpyFiles
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
    /// x.npy (N, D_in) and y.npy: (N, D_out) targets, or (N,) integer class labels, which become one-hot
    /// rows of the model's output width. NaN and infinities are refused, and for ce every target row
    /// must be a distribution (one-hot or probabilities), each naming the file, row and column.
    /// </summary>
    public static Dataset LoadData(string folder, ModelSpec model)
    {
        var x = Read("data", folder, "x.npy");
        var y = Read("data", folder, "y.npy");
        string xPath = Path.Combine(folder, "x.npy"), yPath = Path.Combine(folder, "y.npy");
        Require2D("data", folder, "x.npy", x, "(N, D_in)");
        if (y.Shape.Length != 1) Require2D("data", folder, "y.npy", y, "(N, D_out), or (N,) class labels");
        if (x.Shape[0] != y.Shape[0])
            throw new SpecException("data", $"npy:{folder}", $"x.npy has {x.Shape[0]} samples (rows) but y.npy has {y.Shape[0]}; they must match");
        if (x.Shape[0] == 0 || x.Shape[1] == 0 || (y.Shape.Length == 2 && y.Shape[1] == 0))
            throw new SpecException("data", $"npy:{folder}", "x.npy and y.npy must have at least one sample and one column");
        if (y.Shape.Length == 1 && !y.IsInteger)
            throw new SpecException("data", yPath, $"it is a 1-D {y.DtypeName} array; 1-D targets are class labels and must be integers (int64, int32 or uint8): save them with y.astype(np.int64), or save one-hot rows (N, classes)");
        Check(xPath, () => FiniteValues.Require(x.Data, x.Shape[1], xPath));
        bool labels = y.Shape.Length == 1;
        int outputs = labels ? model.OutputSize : y.Shape[1];
        var targets = labels ? Check(yPath, () => Labels.OneHot<double>(y.Data, outputs, yPath)) : y.Data;
        Check(yPath, () => FiniteValues.Require(targets, outputs, yPath));
        // A y of another width is refused by the caller, naming the model; only a fitting one is checked as ce targets.
        if (model.Loss == LossKind.CrossEntropy && outputs == model.OutputSize) Check(yPath, () => Labels.RequireDistributions(targets, outputs, yPath));
        return new Dataset(x.Data, targets, x.Shape[0], x.Shape[1], outputs);
    }

    private static void Check(string path, Action check) => Check(path, () => { check(); return 0; });

    private static T Check<T>(string path, Func<T> check)
    {
        try
        {
            return check();
        }
        catch (DataValueException e)
        {
            throw DataFiles.Refused(path, e);
        }
    }

    /// <summary>Reads w{l}.npy (and b{l}.npy with biases) into a flat buffer in the model's layout.</summary>
    public static double[] LoadParameters(string folder, ModelSpec model)
    {
        var layout = ParameterLayout.For(model);
        var parameters = new double[layout.Count];
        foreach (var view in layout.Views)
        {
            var file = view.Name + ".npy";
            var array = Read("init", folder, file);
            int[] expected = view.Cols == 1 && view.Name.StartsWith('b') ? [view.Rows] : [view.Rows, view.Cols];
            if (!array.Shape.SequenceEqual(expected))
                throw new SpecException("init", Path.Combine(folder, file),
                    $"its shape is ({string.Join(", ", array.Shape)}); the model {model.Architecture} needs ({string.Join(", ", expected)})");
            array.Data.CopyTo(view.Of(parameters.AsSpan()));
        }
        return parameters;
    }

    /// <summary>Creates the folder up front, so a bad --save fails before training rather than after.</summary>
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
    }

    public static void SaveParameters(string folder, ModelSpec model, ReadOnlySpan<double> parameters)
    {
        Directory.CreateDirectory(folder);
        foreach (var view in ParameterLayout.For(model).Views)
        {
            using var stream = File.Create(Path.Combine(folder, view.Name + ".npy"));
            int[] shape = view.Name.StartsWith('b') ? [view.Rows] : [view.Rows, view.Cols];
            Npy.Write(stream, view.Of(parameters), shape);
        }
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

    private static void Require2D(string field, string folder, string file, NpyArray array, string layout)
    {
        if (array.Shape.Length != 2)
            throw new SpecException(field, Path.Combine(folder, file), $"its shape is ({string.Join(", ", array.Shape)}); allowed: a 2-D array {layout}, one sample per row");
    }
}
