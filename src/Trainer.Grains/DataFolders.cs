using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;

namespace Trainer.Grains;

/// <summary>
/// A data folder's sets, opened and checked (<see cref="DataFolders.Open"/>): its training rows and,
/// for idx data with t10k files, its test rows, read in place from files it holds until disposed.
/// </summary>
public sealed class OpenedData(StoredFiles files, string description) : IDisposable
{
    private readonly List<StoredFile> _held = [];

    /// <summary>Where the data came from, for the job line: "idx:DIR".</summary>
    public string Description => description;
    public StoredSet Train { get; internal set; } = null!;
    public StoredSet? Test { get; internal set; }

    internal StoredFile Hold(StoredFile file)
    {
        _held.Add(file);
        return file;
    }

    public void Dispose()
    {
        foreach (var file in _held) files.Release(file);
        _held.Clear();
    }
}

/// <summary>
/// <c>npy:DIR</c> (x.npy, y.npy) or <c>idx:DIR</c> (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
/// optionally the t10k pair as the test set), opened through <see cref="StoredFiles"/> and checked for the
/// model that will train on it (docs/data-and-losses.md): class labels must be classes of the model's output,
/// values finite, shapes consistent; each refusal is a <see cref="SpecException"/> of the "data" field
/// naming the file. The one reader of data folders: the CLI reads the files it uploads with it, and a
/// silo the files of a job whose data stays on the silos, so both refuse the same files the same way.
/// </summary>
public static class DataFolders
{
    public const string NpyScheme = "npy:", IdxScheme = "idx:";
    public const string Allowed = "allowed: npy:DIR (x.npy, y.npy) or idx:DIR (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz])";

    /// <param name="scale">idx only: pixels are bytes × scale; null: bytes / 255.</param>
    /// <param name="field">The option the folder was given by: its refusals name it ("test" for --test's folder).</param>
    public static OpenedData Open(string value, ModelSpec model, double? scale, StoredFiles files, string field = "data")
    {
        try
        {
            return Open(value, model, scale, files);
        }
        catch (SpecException e) when (field != "data" && e.Field == "data")
        {
            throw new SpecException(field, e.Value, e.Allowed);
        }
    }

    /// <summary>
    /// Refuses a test set whose rows are not the training rows' shape: as many inputs and as many targets
    /// per sample (one-hot rows of another width, or labels of another class count, would score another model).
    /// </summary>
    public static void RequireSameRows(string testValue, StoredSet test, string dataValue, StoredSet train, string where = "")
    {
        if (test.InputSize == train.InputSize && test.OutputSize == train.OutputSize) return;
        throw new SpecException("test", testValue,
            $"its rows have {test.InputSize} inputs and {test.OutputSize} targets per sample, the training rows of {dataValue} {train.InputSize} and {train.OutputSize}; they must be the same{where}");
    }

    private static OpenedData Open(string value, ModelSpec model, double? scale, StoredFiles files)
    {
        var opened = new OpenedData(files, value);
        try
        {
            if (Folder(value, NpyScheme) is { } npy)
            {
                if (scale is not null) throw ScaleOnlyWithIdx(scale.Value);
                opened.Train = OpenNpy(opened, npy, model, files);
            }
            else if (Folder(value, IdxScheme) is { } idx)
            {
                // NOTE: 255 × scale must be finite too, or the brightest pixels would enter training as infinities.
                if (scale is { } s && (!double.IsFinite(255 * s) || s <= 0))
                    throw new SpecException("scale", s, "allowed: a finite number greater than 0 (and 255 times it finite), the factor raw pixel bytes are multiplied by (e.g. 0.00392156862745098 = 1/255)");
                OpenIdx(opened, idx, model.OutputSize, scale, files);
            }
            else throw new SpecException("data", value, Allowed);
            return opened;
        }
        catch
        {
            opened.Dispose();
            throw;
        }
    }

    /// <summary>The folder of "SCHEME:DIR", or null when <paramref name="value"/> is not of that scheme.</summary>
    public static string? Folder(string value, string scheme) =>
        value.StartsWith(scheme, StringComparison.Ordinal) && value.Length > scheme.Length ? value[scheme.Length..] : null;

    public static SpecException ScaleOnlyWithIdx(double scale) =>
        new("scale", scale, "allowed only with --data idx:DIR (it scales raw pixel bytes; npy and synthetic data are used as they are)");

    /// <summary>A data file's refusal (format or value) as the "data" field's error, naming the file.</summary>
    public static SpecException Refused(string path, FormatException e, string where = "") => new("data", path, e.Message.TrimEnd('.') + where);

    /// <summary>
    /// x.npy (N, D_in) and y.npy: (N, D_out) targets, or (N,) integer class labels, read as one-hot rows
    /// of the model's output width. NaN and infinities are refused, and for ce every target row must be a
    /// distribution (one-hot or probabilities), each naming the file, row and column.
    /// </summary>
    private static StoredSet OpenNpy(OpenedData opened, string folder, ModelSpec model, StoredFiles files)
    {
        var x = OpenInputs(opened, folder, files);
        string yPath = Path.Combine(folder, "y.npy");
        var yFile = opened.Hold(Acquire(files, "data", folder, "y.npy"));
        var y = yFile.Array();
        if (y.Shape.Length != 1) Require2D("data", yPath, y.Shape, "(N, D_out), or (N,) class labels", files.Where);
        if (x.Rows != y.Rows)
            throw new SpecException("data", $"npy:{folder}", $"x.npy has {x.Rows} samples (rows) but y.npy has {y.Rows}; they must match{files.Where}");
        if (y.Shape.Length == 2 && y.Shape[1] == 0)
            throw new SpecException("data", yPath, $"it has no columns; allowed: at least one target per sample{files.Where}");
        if (y.Shape.Length == 1 && !y.IsInteger)
            throw new SpecException("data", yPath, $"it is a 1-D {Name(y.Type)} array; 1-D targets are class labels and must be integers (int64, int32 or uint8): save them with y.astype(np.int64), or save one-hot rows (N, classes){files.Where}");
        bool labels = y.Shape.Length == 1;
        int outputs = labels ? model.OutputSize : y.Shape[1];
        if (labels) RequireClasses(y, outputs, yPath, files);
        else
        {
            files.RequireValues(yFile, y);
            // A y of another width is refused by the caller, naming the model; only a fitting one is checked as ce targets.
            if (model.Loss == LossKind.CrossEntropy && outputs == model.OutputSize) Check(yPath, files, () => Labels.RequireDistributions(y.ToDoubles(), outputs, yPath));
        }
        return new StoredSet(x, y, outputs);
    }

    /// <summary>
    /// x.npy alone, (N, D_in), checked as for training (2-D, at least one sample and one column, every value
    /// finite): the inputs `trainer predict` needs, and the first half of a training set.
    /// </summary>
    public static StoredArray OpenInputs(OpenedData opened, string folder, StoredFiles files)
    {
        string xPath = Path.Combine(folder, "x.npy");
        var file = opened.Hold(Acquire(files, "data", folder, "x.npy"));
        var x = file.Array();
        Require2D("data", xPath, x.Shape, "(N, D_in)", files.Where);
        if (x.Shape[0] == 0 || x.Shape[1] == 0)
            throw new SpecException("data", xPath, $"its shape is ({string.Join(", ", x.Shape)}); allowed: at least one sample and one column{files.Where}");
        files.RequireValues(file, x);
        return x;
    }

    private static StoredFile Acquire(StoredFiles files, string field, string folder, string name)
    {
        var path = Path.Combine(folder, name);
        if (!File.Exists(path))
            throw new SpecException(field, $"npy:{folder}", $"{path} does not exist{files.Where}; the folder must hold {name}");
        return files.Acquire(path, StoredFileKind.Npy);
    }

    private static void Require2D(string field, string path, int[] shape, string layout, string where)
    {
        if (shape.Length != 2)
            throw new SpecException(field, path, $"its shape is ({string.Join(", ", shape)}); allowed: a 2-D array {layout}, one sample per row{where}");
    }

    private static string Name(StoredType type) => type.ToString().ToLowerInvariant();

    /// <summary>Every label a class of the model: a whole number from 0 to <paramref name="classes"/> - 1.</summary>
    private static void RequireClasses(StoredArray labels, int classes, string path, StoredFiles files) => Check(path, files, () =>
    {
        var values = labels.ToDoubles();
        for (int r = 0; r < values.Length; r++) Labels.RequireClass(values[r], r, classes, path);
    });

    private static void Check(string path, StoredFiles files, Action check)
    {
        try
        {
            check();
        }
        catch (DataValueException e)
        {
            throw Refused(path, e, files.ReadOn);
        }
    }

    private static void OpenIdx(OpenedData opened, string folder, int classes, double? scale, StoredFiles files)
    {
        if (!Directory.Exists(folder))
            throw new SpecException("data", $"{IdxScheme}{folder}", $"the folder does not exist{files.Where}; allowed: a folder holding train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]");
        var pixels = Idx.ByteValues(scale);
        opened.Train = OpenIdxSplit(opened, folder, "train", classes, pixels, files, required: true)!;
        opened.Test = OpenIdxSplit(opened, folder, "t10k", classes, pixels, files, required: false);
        if (opened.Test is { } test && test.InputSize != opened.Train.InputSize)
            throw new SpecException("data", $"{IdxScheme}{folder}", $"its test images have {test.InputSize} pixels each, its training images {opened.Train.InputSize}; they must be the same size{files.Where}");
    }

    private static StoredSet? OpenIdxSplit(OpenedData opened, string folder, string split, int classes, double[] pixels, StoredFiles files, bool required)
    {
        var imagesPath = FindIdx(folder, $"{split}-images-idx3-ubyte", files.Where);
        var labelsPath = FindIdx(folder, $"{split}-labels-idx1-ubyte", files.Where);
        if (imagesPath is null && labelsPath is null && !required) return null;
        if (imagesPath is null || labelsPath is null)
        {
            var missing = Path.Combine(folder, imagesPath is null ? $"{split}-images-idx3-ubyte" : $"{split}-labels-idx1-ubyte");
            throw new SpecException("data", $"{IdxScheme}{folder}", $"{missing}[.gz] does not exist{files.Where}; the folder must hold {split}-images-idx3-ubyte and {split}-labels-idx1-ubyte, each plain or .gz"
                + (required ? "" : " (the t10k test set is optional, but not half of it)"));
        }
        var images = opened.Hold(files.Acquire(imagesPath, StoredFileKind.IdxImages)).Array(pixels);
        var labels = opened.Hold(files.Acquire(labelsPath, StoredFileKind.IdxLabels)).Array();
        if (images.Rows != labels.Rows)
            throw new SpecException("data", imagesPath, $"it holds {images.Rows} images but {labelsPath} holds {labels.Rows} labels; they must be as many{files.Where}");
        RequireClasses(labels, classes, labelsPath, files);
        return new StoredSet(images, labels, classes);
    }

    /// <summary>DIR/name or DIR/name.gz; both at once is refused, as either could be the one meant.</summary>
    private static string? FindIdx(string folder, string name, string where)
    {
        string plain = Path.Combine(folder, name), gzipped = plain + ".gz";
        bool hasPlain = File.Exists(plain), hasGzipped = File.Exists(gzipped);
        if (hasPlain && hasGzipped)
            throw new SpecException("data", $"{IdxScheme}{folder}", $"both {plain} and {gzipped} exist{where}; keep one of them");
        return hasPlain ? plain : hasGzipped ? gzipped : null;
    }
}
