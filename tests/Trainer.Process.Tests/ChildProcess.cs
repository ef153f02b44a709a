using System.Diagnostics;
using System.Text;

namespace Trainer.Process.Tests;

/// <summary>What a finished child process printed, and its exit code.</summary>
public sealed record ProcessResult(string Command, int Code, string Out, string Err)
{
    public override string ToString() => $"`{Command}` exited with {Code}\n--- stdout ---\n{Out}\n--- stderr ---\n{Err}";
}

/// <summary>
/// Runs child processes with a bounded wait and remembers them, so a test can kill whatever is
/// still running when it ends (also when it fails).
/// </summary>
public sealed class ChildProcesses : IDisposable
{
    private readonly List<System.Diagnostics.Process> _started = [];

    /// <param name="onLine">Called with each stdout line as it arrives (on a reader thread), e.g. to act mid-run.</param>
    /// <param name="onStart">Called with the process's id once it has started, e.g. to signal it later.</param>
    public async Task<ProcessResult> RunAsync(string file, IEnumerable<string> args, IDictionary<string, string> environment, TimeSpan timeout, string? workingDirectory = null,
        Action<string>? onLine = null, Action<int>? onStart = null)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        foreach (var (key, value) in environment) info.Environment[key] = value;
        var command = string.Join(' ', info.ArgumentList.Prepend(file));

        using var process = new System.Diagnostics.Process { StartInfo = info };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stdout) stdout.AppendLine(e.Data);
            onLine?.Invoke(e.Data);
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.Start();
        lock (_started) _started.Add(process);
        onStart?.Invoke(process.Id);
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"`{command}` did not finish within {timeout.TotalSeconds} s and was killed.\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
        }
        finally
        {
            lock (_started) _started.Remove(process);
        }
        process.WaitForExit(); // flushes the asynchronous output readers
        return new ProcessResult(command, process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Kills every child (and its children) that is still running.</summary>
    public void Dispose()
    {
        lock (_started)
        {
            foreach (var process in _started)
            {
                try { if (!process.HasExited) process.Kill(entireProcessTree: true); }
                catch (InvalidOperationException) { }
            }
            _started.Clear();
        }
    }
}
