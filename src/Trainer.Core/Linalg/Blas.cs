namespace Trainer.Core.Linalg;

/// <summary>Which GEMM implementation to use.</summary>
public enum BlasBackend
{
    /// <summary>OpenBLAS when it loads, otherwise managed.</summary>
    Auto,
    OpenBlas,
    Managed,
}

/// <summary>
/// Chooses the process's GEMM backend. The environment variable <c>TRAINER_BLAS</c>
/// (<c>auto</c>, <c>openblas</c>, <c>managed</c>) overrides the default, <c>auto</c>.
/// </summary>
public static class Blas
{
    public const string EnvironmentVariable = "TRAINER_BLAS";

    private static readonly Lazy<IBlas> DefaultBackend = new(() => Create(FromEnvironment()));
    private static readonly Lazy<OpenBlas?> System = new(() => OpenBlas.TryLoad(out _));

    /// <summary>The backend chosen from <c>TRAINER_BLAS</c>, created once per process.</summary>
    public static IBlas Default => DefaultBackend.Value;

    /// <summary>The system OpenBLAS, or null when it is not installed.</summary>
    public static OpenBlas? SystemOpenBlas => System.Value;

    /// <summary>"openblas (Haswell kernel)" or "managed", for logs.</summary>
    public static string Describe(IBlas blas) => blas is OpenBlas openBlas ? $"openblas ({openBlas.CoreName} kernel)" : blas.Name;

    public static BlasBackend FromEnvironment()
    {
        var value = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return Parse(value, EnvironmentVariable);
    }

    public static BlasBackend Parse(string? value, string field) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => BlasBackend.Auto,
        "openblas" => BlasBackend.OpenBlas,
        "managed" => BlasBackend.Managed,
        _ => throw new ArgumentException($"{field} is '{value}'; allowed: auto, openblas, managed."),
    };

    /// <summary>Creates the backend; forcing OpenBLAS where it is missing is an error, not a silent fallback.</summary>
    public static IBlas Create(BlasBackend backend) => backend switch
    {
        BlasBackend.Managed => new ManagedBlas(),
        BlasBackend.OpenBlas => SystemOpenBlas ?? throw new InvalidOperationException(
            "OpenBLAS was requested but " + (OpenBlas.TryLoad(out var why) is null ? why : "it failed to load")),
        _ => (IBlas?)SystemOpenBlas ?? new ManagedBlas(),
    };
}
