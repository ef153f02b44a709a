using System.Collections;
using System.Runtime.InteropServices;

namespace Trainer.Client;

/// <summary>
/// `trainer` runs with tiered compilation on (Trainer.Client.csproj): a short command such as `status`
/// spends most of its time compiling Orleans' client code, and quick first-tier code halves that. An
/// embedded silo trains slower with it (tier-0 code in the per-step path, src/Trainer.Runtime.props),
/// so `train` without a gateway replaces this process, before anything else runs, with the same command
/// under DOTNET_TieredCompilation=0: the same pid, standard streams and signals, only the JIT differs.
/// </summary>
internal static partial class EmbeddedSiloJit
{
    public const string Variable = "DOTNET_TieredCompilation";

    /// <summary>
    /// Whether these arguments start an embedded silo (`train` with neither --gateway nor TRAINER_GATEWAY)
    /// in a process whose JIT mode nobody chose (a set DOTNET_TieredCompilation is the user's, or ours after the exec).
    /// </summary>
    public static bool Applies(string[] args) =>
        args is ["train", ..] && !args.Any(a => a.StartsWith("--gateway", StringComparison.Ordinal))
        && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("TRAINER_GATEWAY"))
        && Environment.GetEnvironmentVariable(Variable) is null;

    /// <summary>Whether this process runs with tiered compilation (what `--verbose` reports).</summary>
    public static bool TieredCompilation =>
        Environment.GetEnvironmentVariable(Variable) is { } value ? value.Trim() != "0" : AppContext.GetData("System.Runtime.TieredCompilation") is not (false or "false" or "False");

    /// <summary>
    /// Replaces this process with `train` under full JIT (execve). Returns only if that failed: the command
    /// then runs in this process as it is, slower to train but the same otherwise.
    /// </summary>
    public static void ExecWithFullJit(string[] args)
    {
        if (!OperatingSystem.IsLinux() || Environment.ProcessPath is not { } host) return;
        // `dotnet trainer.dll ...` is run again the same way; the apphost (`trainer ...`) is its own program.
        string?[] argv = Path.GetFileNameWithoutExtension(host) == "dotnet"
            ? [host, typeof(EmbeddedSiloJit).Assembly.Location, .. args, null]
            : [host, .. args, null];
        string?[] environment = [.. Environment.GetEnvironmentVariables().Cast<DictionaryEntry>().Select(e => $"{e.Key}={e.Value}"), $"{Variable}=0", null];
        try
        {
            Execve(host, argv, environment);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // No libc execve here: train in this process.
        }
    }

    [LibraryImport("libc", EntryPoint = "execve", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Execve(string path, string?[] argv, string?[] envp);
}
