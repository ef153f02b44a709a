using System.IO.Compression;
using Trainer.Core.Data;

namespace Trainer.Core.Tests;

/// <summary>Files under tests/reference and tests/fixtures, copied next to the test assembly as reference/** and fixtures/**.</summary>
internal static class Reference
{
    public static string PathOf(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "reference", .. parts]);

    /// <summary>tests/fixtures/fashion-mnist-small: the first 512 train and 128 test images of Fashion-MNIST, gzipped IDX.</summary>
    public static string SmallFashionMnist => Path.Combine(AppContext.BaseDirectory, "fixtures", "fashion-mnist-small");

    public static NpyArray ReadNpy(params string[] parts)
    {
        var path = PathOf(parts);
        using var stream = File.OpenRead(path);
        return Npy.Read(stream, path);
    }

    /// <summary>An IDX file, gunzipped when its name ends with .gz.</summary>
    public static IdxArray ReadIdx(string path, bool images)
    {
        using var file = File.OpenRead(path);
        using Stream stream = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
        return images ? Idx.ReadImages(stream, path) : Idx.ReadLabels(stream, path);
    }
}
