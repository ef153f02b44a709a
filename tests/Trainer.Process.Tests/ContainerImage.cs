namespace Trainer.Process.Tests;

/// <summary>
/// The Trainer image as deploy/container builds it, under podman: built once per test run from this
/// checkout's Release build (build-image.sh --no-build) on the base offline-base.sh makes from Debian and
/// this machine's .NET runtime, since no container registry is reachable from the test machines. Where
/// podman is missing the container tests are skipped, unless TRAINER_REQUIRE_PODMAN=1 (CI installs it).
/// </summary>
public sealed class ContainerImage
{
    public const string Tag = "localhost/trainer-test:latest";
    public const string BaseTag = "localhost/trainer-base:10.0";

    private static readonly SemaphoreSlim BuildLock = new(1, 1);
    private static ContainerImage? _built;

    private ContainerImage(string[] engine) => Engine = engine;

    /// <summary>podman and its global options (an OCI runtime that works in this sandbox).</summary>
    public string[] Engine { get; }

    /// <summary>Builds the image once (and its base, if this machine has none), or skips the test where podman is missing.</summary>
    public static async Task<ContainerImage> BuildAsync(ChildProcesses processes)
    {
        if (!File.Exists("/usr/bin/podman"))
        {
            if (Environment.GetEnvironmentVariable("TRAINER_REQUIRE_PODMAN") == "1")
                Assert.Fail("podman is not installed and TRAINER_REQUIRE_PODMAN=1 (apt-get install podman runc debootstrap).");
            Assert.Skip("podman is not installed (apt-get install podman runc debootstrap); set TRAINER_REQUIRE_PODMAN=1 to make this a failure.");
        }
        await BuildLock.WaitAsync();
        try
        {
            if (_built is not null) return _built;
            await Repo.EnsureBuiltAsync(processes);
            var script = Path.Combine(Repo.Root, "deploy", "container");
            var plain = new ContainerImage(["podman"]);
            // .ci/run starts this while the solution builds; --if-missing then waits for that build, or finds the image.
            var made = await processes.RunAsync("bash", [Path.Combine(script, "offline-base.sh"), "--tag", BaseTag, "--if-missing"],
                new Dictionary<string, string> { ["CONTAINER_ENGINE"] = "podman" }, TimeSpan.FromMinutes(10), Repo.Root);
            Assert.True(made.Code == 0, made.ToString());
            // Podman's default runtime where it works; else runc without resource limits (container/runc-without-limits says why).
            var image = plain;
            if ((await plain.RunAsync(processes, ["run", "--rm", "--network", "none", BaseTag, "true"], TimeSpan.FromMinutes(1))).Code != 0)
            {
                image = new ContainerImage(["podman", "--runtime", Path.Combine(Repo.Root, "tests", "Trainer.Process.Tests", "container", "runc-without-limits")]);
                var probe = await image.RunAsync(processes, ["run", "--rm", "--network", "none", BaseTag, "true"], TimeSpan.FromMinutes(1));
                Assert.True(probe.Code == 0, probe.ToString());
            }
            Task<ProcessResult> IdAsync() => image.RunAsync(processes, ["image", "inspect", "--format", "{{.Id}}", Tag], TimeSpan.FromSeconds(30));
            var previous = await IdAsync();
            var build = await processes.RunAsync("bash", [Path.Combine(script, "build-image.sh"), "--no-build", "--tag", Tag, "--base", BaseTag],
                new Dictionary<string, string> { ["CONTAINER_ENGINE"] = string.Join(' ', image.Engine) }, TimeSpan.FromMinutes(10), Repo.Root);
            Assert.True(build.Code == 0, build.ToString());
            Assert.Equal(Tag, build.Out.Trim().Split('\n')[^1]);
            // The image this run replaced, so test runs do not pile up untagged images; it may still be in use (then it stays).
            var current = await IdAsync();
            Assert.True(current.Code == 0, current.ToString());
            if (previous.Code == 0 && previous.Out.Trim() != current.Out.Trim())
                await image.RunAsync(processes, ["rmi", previous.Out.Trim()], TimeSpan.FromMinutes(1));
            return _built = image;
        }
        finally
        {
            BuildLock.Release();
        }
    }

    /// <summary>Runs one podman command (e.g. ["run", "--rm", Tag, "trainer", "list"]).</summary>
    public Task<ProcessResult> RunAsync(ChildProcesses processes, IEnumerable<string> args, TimeSpan timeout, Action<string>? onLine = null) =>
        processes.RunAsync(Engine[0], [.. Engine[1..], .. args], new Dictionary<string, string>(), timeout, Repo.Root, onLine);
}
