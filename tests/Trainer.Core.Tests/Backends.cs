using Trainer.Core.Linalg;

namespace Trainer.Core.Tests;

/// <summary>The GEMM backends under test.</summary>
internal static class Backends
{
    public const string RequireVariable = "TRAINER_REQUIRE_OPENBLAS";

    /// <summary>
    /// The system OpenBLAS. On a machine with only the .NET SDK the OpenBLAS tests are skipped (the
    /// managed backend still runs everything); CI installs OpenBLAS and sets TRAINER_REQUIRE_OPENBLAS=1,
    /// so there a missing library fails with the loader's reason instead of hiding a broken install.
    /// </summary>
    public static OpenBlas RequireOpenBlas()
    {
        if (Blas.SystemOpenBlas is { } openBlas) return openBlas;
        OpenBlas.TryLoad(out var why);
        if (Environment.GetEnvironmentVariable(RequireVariable) == "1")
            Assert.Fail($"OpenBLAS did not load and {RequireVariable}=1: {why}.");
        Assert.Skip($"OpenBLAS is not installed ({why}); set {RequireVariable}=1 to make this a failure.");
        throw new InvalidOperationException("unreachable");
    }

    public static IBlas ByName(string name) => name switch
    {
        "managed" => new ManagedBlas(),
        "openblas" => RequireOpenBlas(),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };
}
