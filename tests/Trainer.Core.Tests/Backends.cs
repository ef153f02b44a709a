using Trainer.Core.Linalg;

namespace Trainer.Core.Tests;

/// <summary>The GEMM backends under test. A missing OpenBLAS is a failure, not a skip, unless the run opts out.</summary>
internal static class Backends
{
    public const string AllowMissingVariable = "TRAINER_ALLOW_NO_OPENBLAS";

    /// <summary>
    /// The system OpenBLAS. CI installs it, so a silent skip would hide a broken install: fail with
    /// the loader's reason unless TRAINER_ALLOW_NO_OPENBLAS=1, then skip.
    /// </summary>
    public static OpenBlas RequireOpenBlas()
    {
        if (Blas.SystemOpenBlas is { } openBlas) return openBlas;
        OpenBlas.TryLoad(out var why);
        if (Environment.GetEnvironmentVariable(AllowMissingVariable) == "1")
            Assert.Skip($"OpenBLAS is not installed ({why}) and {AllowMissingVariable}=1.");
        Assert.Fail($"OpenBLAS did not load: {why}. Install it, or set {AllowMissingVariable}=1 to skip the OpenBLAS tests.");
        throw new InvalidOperationException("unreachable");
    }

    public static IBlas ByName(string name) => name switch
    {
        "managed" => new ManagedBlas(),
        "openblas" => RequireOpenBlas(),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };
}
