namespace Trainer.Process.Tests;

/// <summary>Compares the weights two runs saved with `--save npy:DIR`.</summary>
public static class Weights
{
    /// <summary>Every w*.npy in <paramref name="reference"/> exists in <paramref name="other"/> with the same bytes.</summary>
    public static void AssertSameBytes(string reference, string other, string what)
    {
        var files = Directory.GetFiles(reference, "w*.npy").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        Assert.NotEmpty(files);
        foreach (var file in files)
            Assert.True(File.ReadAllBytes(Path.Combine(reference, file!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(other, file!))),
                $"{file} {what} differs from the reference run's ({reference} vs {other})");
    }
}
