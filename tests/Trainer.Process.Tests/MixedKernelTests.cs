using System.Runtime.InteropServices;
using System.Text.Json;

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
        await ReadyAsync(silos, logs);
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

    /// <summary>
    /// A rolling update across CPUs: a job on OpenBLAS's kernel (both silos ran it when it was submitted) loses a
    /// worker's silo (SIGTERM, as a supervisor stops it) after a silo on the managed kernel joined. The worker goes to
    /// the remaining OpenBLAS silo, not to the newcomer, which would fail the job ("cannot run the job's GEMM kernel"):
    /// the job completes with the bits of one OpenBLAS process.
    /// </summary>
    [Fact]
    public async Task AJobOnOpenBlas_WhenAWorkersSiloLeavesAfterAManagedSiloJoined_MovesTheWorkerToASiloThatRunsItsKernel_WithOneOpenBlasProcessesBits()
    {
        RequireOpenBlas();
        var openBlas = new Dictionary<string, string> { ["TRAINER_BLAS"] = "openblas" };
        await using var cluster = await LocalCluster.CreateAsync(silos: 3, "--blas-threads 1", environment: openBlas);
        // Silo i listens on base + i, so by address silo 0 < 1 < 2: worker 1 on silo 1, and the rule over silos 0 and 2
        // would send it to silo 2. Silo 2 leaves at once (SIGTERM) and joins on the managed kernel mid-job.
        await cluster.StartAsync();
        using (var leaving = System.Diagnostics.Process.GetProcessById(cluster.Pid(2)))
        {
            cluster.Terminate(2);
            await leaving.WaitForExitAsync(TestContext.Current.CancellationToken);
        }
        string[] job = ["--model", "1000-100-10", "--workers", "2", "--seed", "4", "--parallel", "data", "--optimizer", "adam"];
        // Long enough to outlast silo 2's start beside it, whatever this machine's speed.
        int steps = await TrainJson.StepsForAsync(cluster, job, calibrationSteps: 300, seconds: 20, minSteps: 3000);
        var undisturbed = Path.Combine(cluster.Folder, "undisturbed");
        var reference = cluster.EmbeddedTrainerAsync(TimeSpan.FromMinutes(5), openBlas, ["train", .. job, "--steps", $"{steps}", "--save", $"npy:{undisturbed}", "--json"]);

        int lastStep = 0, stoppedAt = 0;
        Task? disturbance = null;
        void OnLine(string line)
        {
            if (!line.StartsWith("{\"event\":\"step\"", StringComparison.Ordinal)) return;
            lastStep = JsonDocument.Parse(line).RootElement.GetProperty("step").GetInt32();
            if (lastStep < 20 || disturbance is not null) return;
            disturbance = Task.Run(async () =>
            {
                await cluster.RestartAsync(new Dictionary<string, string> { ["TRAINER_BLAS"] = "managed" }, 2);
                stoppedAt = Volatile.Read(ref lastStep);
                cluster.Terminate(1);
            });
        }
        var run = await cluster.TrainerAsync(TimeSpan.FromSeconds(300), OnLine, ["train", .. job, "--steps", $"{steps}", "--json"]);
        Assert.NotNull(disturbance);
        await disturbance;
        var jobId = TrainJson.JobId(run.Out);
        Assert.True(run.Code == 0 && jobId is not null, $"the job did not survive silo 1's stop at step {stoppedAt} of {steps}.\n{run}\nsilo log lines about jobs:\n{cluster.LogLines("Job ")}");
        Assert.True(stoppedAt < steps, $"silo 1 was stopped at step {stoppedAt}, after the job's last step {steps}: the job must run longer");
        Assert.StartsWith("openblas ", TrainJson.FinalEvent(run.Out).GetProperty("gemm").GetString());
        Assert.Contains("GEMM backend managed", cluster.Log(2));
        // Worker 1 started again on silo 0, beside worker 0; silo 2 got none of the job.
        Assert.Contains($"Worker 1/2 of job {jobId} loaded", cluster.Log(0));
        Assert.DoesNotContain($"of job {jobId}", cluster.Log(2));

        var recovered = Path.Combine(cluster.Folder, "recovered");
        var result = await cluster.TrainerAsync("result", jobId, "--save", $"npy:{recovered}");
        Assert.True(result.Code == 0, result.ToString());
        var undisturbedRun = await reference;
        Assert.True(undisturbedRun.Code == 0, undisturbedRun.ToString());
        var referenceLosses = TrainJson.StepLosses(undisturbedRun.Out);
        foreach (var (step, loss) in TrainJson.FirstLossOfEachStep(run.Out))
            Assert.True(loss == referenceLosses[step - 1], $"step {step}: loss {loss:R} with silo 1 stopped at step {stoppedAt}, {referenceLosses[step - 1]:R} in one OpenBLAS process");
        Weights.AssertSameBytes(undisturbed, recovered, "of the OpenBLAS job after its worker moved, against one OpenBLAS process");
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

    /// <summary>
    /// A silo on a CPU without FMA rounds the managed kernel's multiply-adds twice (and TensorPrimitives' exp and log
    /// with them), so it runs a kernel of its own, "managed without FMA". DOTNET_EnableAVX2=0 hides AVX2 and FMA from
    /// .NET, as an x86-64-v2 CPU or a virtual machine's CPU model does. A job submitted beside it computes on "managed"
    /// on the silos with FMA only, and ends with one such process's bits; in one process without FMA it has others.
    /// </summary>
    [Fact]
    public async Task ASiloWithoutFma_GetsNoPartOfAJobOnTheManagedKernel_WhichEndsWithTheBitsOfOneProcessWithFma()
    {
        if (!System.Runtime.Intrinsics.X86.Fma.IsSupported)
            Assert.Skip("This CPU has no FMA: no silo here can run the managed kernel that fuses multiply-adds.");
        using var processes = new ChildProcesses();
        var folder = Path.Combine(Path.GetTempPath(), "trainer-process-tests", Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(folder);
        var (primary, primaryGateway) = SiloProcess.FreePorts();
        var (second, secondGateway) = SiloProcess.FreePorts();
        var withoutFma = new Dictionary<string, string> { ["DOTNET_EnableAVX2"] = "0" };
        var logs = new[] { new Lines(), new Lines() };
        // The silo with FMA starts first, so it is the oldest and holds the job grain: the job's kernel is that silo's own
        // (one silo runs each kernel, and a tie goes to the submitting silo's).
        var first = Silo(processes, logs[0], primary, primaryGateway, primary, "managed");
        await ReadyAsync([first], logs[..1]);
        var silos = new[] { first, Silo(processes, logs[1], second, secondGateway, primary, "managed", withoutFma) };
        await ReadyAsync(silos, logs);
        Assert.Contains("GEMM backend managed without FMA", logs[1].ToString());
        Assert.DoesNotContain("without FMA", logs[0].ToString());

        string[] job = ["train", "--model", "1000-100-10", "--workers", "2", "--seed", "4", "--parallel", "data", "--steps", $"{Steps}"];
        var onCluster = Path.Combine(folder, "cluster");
        var run = await processes.RunAsync("dotnet", [Repo.TrainerDll, .. job, "--save", $"npy:{onCluster}", "--gateway", $"127.0.0.1:{primaryGateway},127.0.0.1:{secondGateway}"],
            new Dictionary<string, string>(), TimeSpan.FromMinutes(3), folder);
        Assert.True(run.Code == 0, run.ToString());
        var line = run.Out.Split('\n').First(l => l.StartsWith("job ", StringComparison.Ordinal));
        Assert.EndsWith(", GEMM managed", line.TrimEnd());
        string id = line.Split(' ')[1];
        // Both workers on the silo with FMA; the other silo got none of the job.
        Assert.Contains($"Worker 0/2 of job {id} loaded", logs[0].ToString());
        Assert.Contains($"Worker 1/2 of job {id} loaded", logs[0].ToString());
        Assert.DoesNotContain($"of job {id}", logs[1].ToString());

        var fused = await EmbeddedAsync(processes, folder, job, "fused", "managed");
        var unfused = await EmbeddedAsync(processes, folder, job, "unfused", "managed", withoutFma);
        Weights.AssertSameBytes(fused, onCluster, "of the job beside a silo without FMA, against one managed process with FMA,");
        // The kernels do differ: a worker on the silo without FMA would have moved the job's bits.
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(fused, "w1.npy")), File.ReadAllBytes(Path.Combine(unfused, "w1.npy")));
    }

    private static async Task ReadyAsync(Task<ProcessResult>[] silos, Lines[] logs)
    {
        for (int i = 0; i < silos.Length; i++)
        {
            int silo = i;
            await Poll.UntilAsync(() => Task.FromResult(logs[silo].Contains("Silo ready:") || silos[silo].IsCompleted), ready => ready, TimeSpan.FromSeconds(90),
                _ => $"silo {silo} is not ready:\n{logs[silo]}");
            if (silos[silo].IsCompleted) Assert.Fail($"silo {silo} exited:\n{await silos[silo]}");
        }
    }

    /// <summary>A trainer-silo process on <paramref name="blas"/> (TRAINER_BLAS), its console output kept in <paramref name="log"/>; it runs until the test's end.</summary>
    private static Task<ProcessResult> Silo(ChildProcesses processes, Lines log, int port, int gateway, int primary, string blas, IDictionary<string, string>? environment = null) =>
        processes.RunAsync("dotnet", ["trainer-silo.dll", "--silo-port", $"{port}", "--gateway-port", $"{gateway}", "--primary-port", $"{primary}", "--blas-threads", "1"],
            new Dictionary<string, string>(environment ?? new Dictionary<string, string>()) { ["TRAINER_BLAS"] = blas, ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" },
            TimeSpan.FromMinutes(10), Repo.SiloFolder, log.Add);

    /// <summary>The job in one process on <paramref name="blas"/>; returns the folder of its saved weights.</summary>
    private static async Task<string> EmbeddedAsync(ChildProcesses processes, string folder, string[] job, string parallel, string blas, IDictionary<string, string>? environment = null)
    {
        var saved = Path.Combine(folder, $"{parallel}-{blas}");
        var run = await processes.RunAsync("dotnet", [Repo.TrainerDll, .. job, "--save", $"npy:{saved}", "--json"],
            new Dictionary<string, string>(environment ?? new Dictionary<string, string>()) { ["TRAINER_BLAS"] = blas }, TimeSpan.FromMinutes(3), folder);
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
