using System.Text.Json;

namespace Trainer.Process.Tests;

/// <summary>
/// With the managed kernels (TRAINER_BLAS=managed) a job's every step is the same bits on 256-bit and
/// 512-bit vectors, that is on AVX2 and AVX-512 CPUs, so silos of both kinds may share a job
/// (deploy/kubernetes sets it for nodes of mixed CPUs). DOTNET_EnableAVX512=0 holds .NET to 256-bit
/// vectors; on a CPU without AVX-512 both runs use them, and the test checks nothing more there.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class VectorWidthBitsTests
{
    public static TheoryData<string[]> Jobs => new()
    {
        { ["--steps", "1000"] },                                     // the seed job: sse, sigmoid, SGD
        { ["--engine", "autograd", "--steps", "300"] },
        { ["--precision", "float32", "--optimizer", "adam", "--lr", "1e-3", "--steps", "300"] },
        { ["--data", $"idx:{Path.Combine(Repo.Root, "tests", "fixtures", "fashion-mnist-small")}", "--model", "784-32-10", "--activation", "relu", "--bias",
            "--loss", "ce", "--optimizer", "adam", "--lr", "1e-3", "--batch", "64", "--epochs", "1", "--workers", "2"] },
    };

    [Theory]
    [MemberData(nameof(Jobs))]
    public async Task AnEmbeddedJobOnTheManagedKernels_PrintsTheSameBitsForEveryStep_On256And512BitVectors(string[] job)
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);

        var wide = await RunAsync(processes, job, new() { ["TRAINER_BLAS"] = "managed" });
        var narrow = await RunAsync(processes, job, new() { ["TRAINER_BLAS"] = "managed", ["DOTNET_EnableAVX512"] = "0" });

        Assert.NotEmpty(wide);
        Assert.Equal(wide, narrow);
    }

    /// <summary>Every step, evaluation and completed event the job printed, without what differs between runs (its id, its times).</summary>
    private static async Task<string[]> RunAsync(ChildProcesses processes, string[] job, Dictionary<string, string> environment)
    {
        var run = await processes.RunAsync("dotnet", [Repo.TrainerDll, "train", .. job, "--json"], environment, TimeSpan.FromMinutes(3));
        Assert.True(run.Code == 0, run.ToString());
        return
        [
            .. run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => JsonDocument.Parse(line).RootElement)
                .Where(e => e.GetProperty("event").GetString() != "submitted")
                .Select(e => string.Join(",", e.EnumerateObject()
                    .Where(p => p.Name is not ("job" or "seconds" or "steps_per_second"))
                    .Select(p => $"{p.Name}={p.Value.GetRawText()}"))),
        ];
    }
}
