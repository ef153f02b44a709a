using System.Runtime.InteropServices;

namespace Trainer.Process.Tests;

/// <summary>
/// Two silo processes on different GEMM kernels, as on machines with different CPUs or TRAINER_BLAS
/// settings: one on OpenBLAS, one on the managed kernel. Each job computes every product on one
/// kernel that both run (managed), so a job whose workers span both silos, data parallel or with its
/// first layer split, saves the weights of one managed process to the byte, and not OpenBLAS's.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class MixedKernelTests
{
    private const int Steps = 200;

    [Fact]
    public async Task SilosOnOpenBlasAndOnTheManagedKernel_TrainEachJobOnTheManagedKernel_WithTheBitsOfOneManagedProcess()
    {
        RequireOpenBlas();
        using var processes = new ChildProcesses();
        var folder = Path.Combine(Path.GetTempPath(), "trainer-process-tests", Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(folder);
        var (primary, primaryGateway) = SiloProcess.FreePorts();
        var (second, secondGateway) = SiloProcess.FreePorts();
        var logs = new[] { new Lines(), new Lines() };
        var silos = new[]
        {
            Silo(processes, logs[0], primary, primaryGateway, primary, "openblas"),
            Silo(processes, logs[1], second, secondGateway, primary, "managed"),
        };
        for (int i = 0; i < silos.Length; i++)
        {
            int silo = i;
            await Poll.UntilAsync(() => Task.FromResult(logs[silo].Contains("Silo ready:") || silos[silo].IsCompleted), ready => ready, TimeSpan.FromSeconds(90),
                _ => $"silo {silo} is not ready:\n{logs[silo]}");
            if (silos[silo].IsCompleted) Assert.Fail($"silo {silo} exited:\n{await silos[silo]}");
        }
        Assert.Contains("GEMM backend openblas", logs[0].ToString());
        Assert.Contains("GEMM backend managed", logs[1].ToString());

        string gateways = $"127.0.0.1:{primaryGateway},127.0.0.1:{secondGateway}";
        foreach (var parallel in new[] { "data", "split" })
        {
            string[] job = ["train", "--model", "1000-100-10", "--workers", "2", "--seed", "4", "--parallel", parallel, "--steps", $"{Steps}"];
            var onCluster = Path.Combine(folder, $"{parallel}-cluster");
            var run = await processes.RunAsync("dotnet", [Repo.TrainerDll, .. job, "--save", $"npy:{onCluster}", "--gateway", gateways],
                new Dictionary<string, string>(), TimeSpan.FromMinutes(3), folder);
            Assert.True(run.Code == 0, run.ToString());
            // The CLI's job line names the kernel too.
            var line = run.Out.Split('\n').First(l => l.StartsWith("job ", StringComparison.Ordinal));
            Assert.EndsWith(", GEMM managed", line.TrimEnd());
            string id = line.Split(' ')[1];
            // The job's silo names the kernel it chose.
            string started = $"{logs[0]}\n{logs[1]}".Split('\n').Single(l => l.Contains($"Job {id} started: "));
            Assert.Contains($"{Steps} steps", started);
            Assert.EndsWith(", GEMM managed", started);

            var managed = await EmbeddedAsync(processes, folder, job, parallel, "managed");
            var openBlas = await EmbeddedAsync(processes, folder, job, parallel, "openblas");
            Weights.AssertSameBytes(managed, onCluster, $"of the {parallel} job on the two kernels' silos, against one managed process");
            // The kernels do differ: were each silo to compute on its own, the job would match neither process.
            Assert.NotEqual(File.ReadAllBytes(Path.Combine(managed, "w1.npy")), File.ReadAllBytes(Path.Combine(openBlas, "w1.npy")));
        }
    }

    // The library the trainer loads first (Trainer.Core's OpenBlas, which this project does not reference).
    private static void RequireOpenBlas()
    {
        if (NativeLibrary.TryLoad("libopenblas.so.0", out var handle))
        {
            NativeLibrary.Free(handle);
            return;
        }
        if (Environment.GetEnvironmentVariable("TRAINER_REQUIRE_OPENBLAS") == "1")
            Assert.Fail("libopenblas.so.0 did not load and TRAINER_REQUIRE_OPENBLAS=1.");
        Assert.Skip("OpenBLAS is not installed (libopenblas.so.0); this test needs a silo on it. On Debian: apt-get install libopenblas0-pthread.");
    }

    /// <summary>A trainer-silo process on <paramref name="blas"/> (TRAINER_BLAS), its console output kept in <paramref name="log"/>; it runs until the test's end.</summary>
    private static Task<ProcessResult> Silo(ChildProcesses processes, Lines log, int port, int gateway, int primary, string blas) =>
        processes.RunAsync("dotnet", ["trainer-silo.dll", "--silo-port", $"{port}", "--gateway-port", $"{gateway}", "--primary-port", $"{primary}", "--blas-threads", "1"],
            new Dictionary<string, string> { ["TRAINER_BLAS"] = blas, ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" }, TimeSpan.FromMinutes(10), Repo.SiloFolder, log.Add);

    /// <summary>The job in one process on <paramref name="blas"/>; returns the folder of its saved weights.</summary>
    private static async Task<string> EmbeddedAsync(ChildProcesses processes, string folder, string[] job, string parallel, string blas)
    {
        var saved = Path.Combine(folder, $"{parallel}-{blas}");
        var run = await processes.RunAsync("dotnet", [Repo.TrainerDll, .. job, "--save", $"npy:{saved}", "--json"],
            new Dictionary<string, string> { ["TRAINER_BLAS"] = blas }, TimeSpan.FromMinutes(3), folder);
        Assert.True(run.Code == 0, run.ToString());
        return saved;
    }

    /// <summary>A process's output lines as they arrive.</summary>
    private sealed class Lines
    {
        private readonly List<string> _lines = [];

        public void Add(string line)
        {
            lock (_lines) _lines.Add(line);
        }

        public bool Contains(string text)
        {
            lock (_lines) return _lines.Any(l => l.Contains(text, StringComparison.Ordinal));
        }

        public override string ToString()
        {
            lock (_lines) return string.Join('\n', _lines);
        }
    }
}
