using System.IO.Compression;
using Trainer.Abstractions;
using Trainer.Client;
using Trainer.Core.Data;
using Trainer.Core.Models;

namespace Trainer.Cluster.Tests;

/// <summary>Data folders for --data-on-silos tests, made from the small Fashion-MNIST fixture, and submissions of jobs on them.</summary>
internal static class DataOnSilosFiles
{
    /// <summary>The fixture itself: gzipped IDX, which a silo decompresses into memory once.</summary>
    public static string GzippedIdx => Cli.SmallFashionMnist;

    /// <summary>The fixture gunzipped: plain IDX files, which a silo maps.</summary>
    public static string PlainIdx()
    {
        var folder = Cli.TempFolder();
        foreach (var gz in Directory.GetFiles(Cli.SmallFashionMnist, "*.gz"))
        {
            using var from = new GZipStream(File.OpenRead(gz), CompressionMode.Decompress);
            using var to = File.Create(Path.Combine(folder, Path.GetFileNameWithoutExtension(gz)));
            from.CopyTo(to);
        }
        return folder;
    }

    /// <summary>
    /// The fixture's training images as a float32 x.npy (pixels / 255, narrowed) and int64 class labels
    /// as y.npy; <paramref name="edit"/> may change the pixels first (a NaN), and <paramref name="labels"/> the labels.
    /// </summary>
    public static string Float32Npy(Action<float[]>? edit = null, Func<long[], long[]>? labels = null)
    {
        var folder = Cli.TempFolder();
        var data = DataFiles.Load($"idx:{Cli.SmallFashionMnist}", new ModelSpec([784, 32, 10], Activation.Relu, LossKind.CrossEntropy), null).Train;
        var x = Trainer.Core.Training.Precisions.Narrow(data.X);
        edit?.Invoke(x);
        var y = Enumerable.Range(0, data.Count).Select(r => (long)Array.IndexOf(data.Y, 1.0, r * 10, 10) - r * 10).ToArray();
        using (var stream = File.Create(Path.Combine(folder, "x.npy"))) Npy.Write(stream, x, data.Count, 784);
        var written = labels?.Invoke(y) ?? y;
        using (var stream = File.Create(Path.Combine(folder, "y.npy"))) Npy.Write(stream, written, written.Length);
        return folder;
    }

    /// <summary>What `trainer train OPTIONS` would submit to <paramref name="client"/>'s cluster: with --data-on-silos, after a silo checked and counted the files.</summary>
    public static async Task<JobSubmission> SubmissionAsync(IClusterClient client, params string[] options)
    {
        var parsed = new Commands(TextWriter.Null, TextWriter.Null).Build().Parse(["train", .. options]);
        Assert.Empty(parsed.Errors);
        var arguments = CliOptions.JobArguments(parsed);
        if (arguments.SiloDataCheck() is not { } files) return arguments.ToSubmission();
        var facts = await client.GetGrain<ITrainingJobGrain>(Jobs.NewId()).InspectDataAsync(files, arguments.ParseModel());
        return arguments.ToSubmission(onSilos: facts);
    }
}
