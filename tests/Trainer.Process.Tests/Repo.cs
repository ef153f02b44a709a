namespace Trainer.Process.Tests;

/// <summary>The repository these tests run from, and its binaries, built once per test run.</summary>
public static class Repo
{
    private static readonly SemaphoreSlim BuildLock = new(1, 1);
    private static bool _built;

    /// <summary>The folder holding Trainer.sln, found by walking up from the test binaries.</summary>
    public static string Root { get; } = FindRoot();

    public static string ClusterScript => Path.Combine(Root, "deploy", "local", "cluster.sh");

    /// <summary>The client as built by `cluster.sh build` (run it with `dotnet`, which needs no apphost).</summary>
    public static string TrainerDll => Path.Combine(Root, "src", "Trainer.Client", "bin", "Release", "net10.0", "trainer.dll");

    /// <summary>The folder of trainer-silo as built by `cluster.sh build`; a silo runs in it, to find its appsettings.json.</summary>
    public static string SiloFolder => Path.Combine(Root, "src", "Trainer.Silo", "bin", "Release", "net10.0");

    /// <summary>Builds trainer-silo and trainer through the script, once, if missing or stale.</summary>
    public static async Task EnsureBuiltAsync(ChildProcesses processes)
    {
        await BuildLock.WaitAsync();
        try
        {
            if (_built) return;
            var result = await processes.RunAsync("bash", [ClusterScript, "build"], new Dictionary<string, string>(), TimeSpan.FromMinutes(5), Root);
            Assert.True(result.Code == 0, result.ToString());
            _built = true;
        }
        finally
        {
            BuildLock.Release();
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Trainer.sln"))) return dir.FullName;
        throw new InvalidOperationException($"No Trainer.sln above {AppContext.BaseDirectory}; these tests run from the repository's build output.");
    }
}
