using System.Runtime.InteropServices;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Signals to a child process (also compiled into Trainer.Process.Tests): .NET sends none but SIGKILL
/// (Process.Kill), so these go through libc's kill(2).
/// </summary>
internal static class Signals
{
    public const int Term = 15, Stop = 19, Continue = 18;

    /// <summary>Sends <paramref name="signal"/> to process <paramref name="pid"/>; <paramref name="what"/> names it in the error if that fails.</summary>
    public static void Send(int pid, int signal, string what)
    {
        if (Kill(pid, signal) != 0)
            throw new InvalidOperationException($"kill({pid}, {signal}) of {what} failed: errno {Marshal.GetLastPInvokeError()}");
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
