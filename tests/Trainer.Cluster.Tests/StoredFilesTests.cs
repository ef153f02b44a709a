using Trainer.Core;
using Trainer.Core.Models;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A silo's data files (<see cref="StoredFiles"/>): a file is opened once however many readers hold it,
/// and the pass over its values is made once per file version (path, size, modification time), so a
/// job's workers do not each scan it again; a new version is checked again.
/// </summary>
public sealed class StoredFilesTests
{
    private static readonly ModelSpec Model = new([784, 32, 10], Activation.Relu, LossKind.CrossEntropy);

    [Fact]
    public void TheValuesCheck_IsMadeOncePerFileVersion_AndAgainWhenTheFileChanges()
    {
        var files = new StoredFiles("test-silo");
        string folder = DataOnSilosFiles.Float32Npy();
        string x = Path.Combine(folder, "x.npy");
        DataFolders.Open($"npy:{folder}", Model, null, files).Dispose();

        // A NaN written over a value, the size and the modification time kept: the kept verdict stands (no second pass).
        var written = File.GetLastWriteTimeUtc(x);
        Poke(x, 3 * 784 + 17, float.NaN);
        File.SetLastWriteTimeUtc(x, written);
        DataFolders.Open($"npy:{folder}", Model, null, files).Dispose();

        // A new modification time is a new version: checked, and refused.
        File.SetLastWriteTimeUtc(x, written.AddSeconds(1));
        var refused = Assert.Throws<SpecException>(() => DataFolders.Open($"npy:{folder}", Model, null, files).Dispose());
        Assert.Contains("row 3, column 17 (counting from 0) is NaN; every value must be a finite number (read on silo test-silo)", refused.Message);
    }

    [Fact]
    public void AFileHeldByManyReaders_IsOpenedOnce_AndFreedWithTheLast()
    {
        var files = new StoredFiles();
        string folder = DataOnSilosFiles.PlainIdx();
        var first = DataFolders.Open($"idx:{folder}", Model, null, files);
        var second = DataFolders.Open($"idx:{folder}", Model, 0.5, files);
        Assert.Equal(4, files.OpenCount);   // train and t10k images and labels, once each
        first.Dispose();
        Assert.Equal(4, files.OpenCount);
        Span<double> pixels = stackalloc double[784];
        second.Train.ReadInputs<double>(0, pixels);
        second.Dispose();
        Assert.Equal(0, files.OpenCount);
    }

    [Fact]
    public void AFileOpenedByARelativePath_IsTheSameFileByItsAbsolutePath()
    {
        // An embedded silo's grains are sent absolute paths to the files its command opened as typed (Trainer.Client's InPlaceData).
        var files = new StoredFiles();
        string folder = DataOnSilosFiles.PlainIdx();
        using var typed = DataFolders.Open($"idx:{Path.GetRelativePath(Environment.CurrentDirectory, folder)}", Model, null, files);
        using var absolute = DataFolders.Open($"idx:{Path.GetFullPath(folder)}", Model, null, files);
        Assert.Equal(4, files.OpenCount);
    }

    private static void Poke(string npy, long index, float value)
    {
        using var stream = File.Open(npy, FileMode.Open, FileAccess.ReadWrite);
        var header = Trainer.Core.Data.Npy.ReadHeader(stream, npy);
        stream.Position = header.DataOffset + index * 4;
        stream.Write(BitConverter.GetBytes(value));
    }
}
