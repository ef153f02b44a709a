namespace Trainer.Core.Tests;

/// <summary>The real Fashion-MNIST files of Debian's dataset-fashion-mnist package.</summary>
internal static class FashionMnist
{
    public const string Folder = "/usr/share/datasets/fashion-mnist";
    public const string RequireVariable = "TRAINER_REQUIRE_FASHION_MNIST";

    /// <summary>
    /// The package's folder. Without the package the tests that read it are skipped; CI installs it and
    /// sets TRAINER_REQUIRE_FASHION_MNIST=1, so there a missing file fails instead of hiding a broken install.
    /// </summary>
    public static string RequireFolder()
    {
        var missing = new[] { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" }
            .Select(f => Path.Combine(Folder, f)).Where(p => !File.Exists(p)).ToArray();
        if (missing.Length == 0) return Folder;
        var why = $"{string.Join(", ", missing)} not found (apt-get install dataset-fashion-mnist)";
        if (Environment.GetEnvironmentVariable(RequireVariable) == "1")
            Assert.Fail($"{why} and {RequireVariable}=1.");
        Assert.Skip($"{why}; set {RequireVariable}=1 to make this a failure.");
        throw new InvalidOperationException("unreachable");
    }
}
