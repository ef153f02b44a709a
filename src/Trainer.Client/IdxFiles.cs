using System.IO.Compression;
using Trainer.Core;
using Trainer.Core.Data;

namespace Trainer.Client;

/// <summary>
/// MNIST-family data in IDX files (<c>--data idx:DIR</c>): DIR holds train-images-idx3-ubyte and
/// train-labels-idx1-ubyte, the training set, and optionally t10k-images-idx3-ubyte and
/// t10k-labels-idx1-ubyte, the test set; each file plain or gzipped (name.gz). Images become rows of
/// rows x cols pixels, bytes / 255 by default (in [0, 1]) or bytes × --scale; labels become one-hot
/// rows of the model's output width.
/// </summary>
internal static class IdxFiles
{
    public const string Scheme = "idx:";

    public static (Dataset Train, Dataset? Test) Load(string folder, int classes, double? scale)
    {
        if (!Directory.Exists(folder))
            throw new SpecException("data", $"{Scheme}{folder}", "the folder does not exist; allowed: a folder holding train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]");
        var train = LoadSplit(folder, "train", classes, scale, required: true)!;
        var test = LoadSplit(folder, "t10k", classes, scale, required: false);
        if (test is not null && test.InputSize != train.InputSize)
            throw new SpecException("data", $"{Scheme}{folder}", $"its test images have {test.InputSize} pixels each, its training images {train.InputSize}; they must be the same size");
        return (train, test);
    }

    private static Dataset? LoadSplit(string folder, string split, int classes, double? scale, bool required)
    {
        var imagesPath = Find(folder, $"{split}-images-idx3-ubyte");
        var labelsPath = Find(folder, $"{split}-labels-idx1-ubyte");
        if (imagesPath is null && labelsPath is null && !required) return null;
        if (imagesPath is null || labelsPath is null)
        {
            var missing = Path.Combine(folder, imagesPath is null ? $"{split}-images-idx3-ubyte" : $"{split}-labels-idx1-ubyte");
            throw new SpecException("data", $"{Scheme}{folder}", $"{missing}[.gz] does not exist; the folder must hold {split}-images-idx3-ubyte and {split}-labels-idx1-ubyte, each plain or .gz"
                + (required ? "" : " (the t10k test set is optional, but not half of it)"));
        }
        var images = Read(imagesPath, images: true);
        var labels = Read(labelsPath, images: false);
        if (images.Count != labels.Count)
            throw new SpecException("data", imagesPath, $"it holds {images.Count} images but {labelsPath} holds {labels.Count} labels; they must be as many");
        try
        {
            var y = Labels.OneHot<byte>(labels.Data, classes, labelsPath);
            return new Dataset(Idx.Values(images.Data, scale), y, images.Count, images.ItemSize, classes);
        }
        catch (DataValueException e)
        {
            throw DataFiles.Refused(labelsPath, e);
        }
    }

    /// <summary>DIR/name or DIR/name.gz; both at once is refused, as either could be the one meant.</summary>
    private static string? Find(string folder, string name)
    {
        string plain = Path.Combine(folder, name), gzipped = plain + ".gz";
        bool hasPlain = File.Exists(plain), hasGzipped = File.Exists(gzipped);
        if (hasPlain && hasGzipped)
            throw new SpecException("data", $"{Scheme}{folder}", $"both {plain} and {gzipped} exist; keep one of them");
        return hasPlain ? plain : hasGzipped ? gzipped : null;
    }

    private static IdxArray Read(string path, bool images)
    {
        try
        {
            using var file = File.OpenRead(path);
            using Stream stream = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
            return images ? Idx.ReadImages(stream, path) : Idx.ReadLabels(stream, path);
        }
        catch (IdxFormatException e)
        {
            throw DataFiles.Refused(path, e);
        }
        catch (InvalidDataException e)
        {
            // GZipStream's own refusal of a file that is not gzip (or is cut short inside it).
            throw new SpecException("data", path, $"{path}: not a readable gzip file ({e.Message.TrimEnd('.')}); a .gz name means gzip-compressed");
        }
    }
}
