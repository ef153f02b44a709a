using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Trainer.Process.Tests;

/// <summary>
/// A silo's link port takes connections from anyone who reaches it. A flood of well-formed
/// greetings for made-up jobs, greetings naming a running job's worker under made-up runs, idle
/// connections, random bytes and lying length headers must leave the silo up, its file handles
/// bounded (Trainer:MaxUnclaimedLinks, 256 by default, plus what is in flight), its log short, and
/// a split job training meanwhile with the bits of an undisturbed run.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed partial class LinkPortFloodTests
{
    private const int MadeUpGreetings = 5000, GreetingsForTheJob = 1000, IdleConnections = 300, Garbage = 200;
    private const int MaxUnclaimed = 256;
    // What else a silo may open meanwhile: connections being accepted or read, Orleans' and the client's.
    private const int InFlight = 128;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AFloodOnTheLinkPort_LeavesTheSilosFileHandlesBounded_AndASplitJobTrainingMeanwhileEndsWithItsUndisturbedBits()
    {
        await using var cluster = await LocalCluster.CreateAsync(silos: 2, "--blas-threads 1");
        await cluster.StartAsync();
        // Worker 0 on silo 0 links to worker 1 on silo 1, through silo 1's link port.
        string[] job = ["--model", "1000-100-10", "--workers", "2", "--seed", "0", "--parallel", "split"];
        int steps = await TrainJson.StepsForAsync(cluster, job, calibrationSteps: 300, seconds: 30, minSteps: 3000);
        var port = IPEndPoint.Parse(LinksListen().Match(cluster.Log(1)).Groups[1].Value);
        int silo = cluster.Pid(1);
        int handlesBefore = SiloProbe.OpenFiles(silo);

        var submitted = await cluster.TrainerAsync(["submit", .. job, "--steps", $"{steps}"]);
        Assert.True(submitted.Code == 0, submitted.ToString());
        string target = submitted.Out.Trim();

        // The job runs (submit answers once it has started): flood while its workers link up and train.
        using var sampling = new CancellationTokenSource();
        var peak = SiloProbe.SamplePeakAsync(silo, sampling.Token);
        var flooding = System.Diagnostics.Stopwatch.StartNew();
        var held = await FloodAsync(port, target);
        flooding.Stop();
        string endedDuringFlood = cluster.LogLines($"Job {target} Completed");
        // The silo takes up what the flood holds open until the cap of unclaimed connections: the worst moment.
        int saturated = await Poll.UntilAsync(() => Task.FromResult(SiloProbe.OpenFiles(silo)), n => n >= handlesBefore + MaxUnclaimed - 16, TimeSpan.FromSeconds(20),
            n => $"{n} file handles open, {handlesBefore} before the flood");
        await sampling.CancelAsync();
        var (sampled, peakRssMb) = await peak;
        int peakHandles = Math.Max(sampled, saturated);
        foreach (var socket in held) socket.Dispose();
        // The reference: the same job undisturbed, in one process beside the cluster's, once the flood is over.
        var undisturbed = Path.Combine(cluster.Folder, "undisturbed");
        var referenceRun = cluster.EmbeddedTrainerAsync(["train", .. job, "--steps", $"{steps}", "--save", $"npy:{undisturbed}", "--json"]);

        Assert.True(endedDuringFlood.Length == 0, $"the job ended before the flood did: nothing was shown ({endedDuringFlood})");
        var result = await cluster.TrainerAsync(TimeSpan.FromMinutes(5), "watch", target, "--from-start", "--json");
        Assert.True(result.Code == 0, result.ToString());
        Assert.Equal("completed", TrainJson.FinalEvent(result.Out).GetProperty("event").GetString());
        Assert.True(peakHandles <= handlesBefore + MaxUnclaimed + InFlight,
            $"silo 1 had {peakHandles} file handles open during the flood, {handlesBefore} before it (at most {MaxUnclaimed} unclaimed connections + {InFlight} in flight allowed)");
        // What the flood left unclaimed closes by itself within the link setup time (30 s).
        await Poll.UntilAsync(() => Task.FromResult(SiloProbe.OpenFiles(silo)), n => n <= handlesBefore + 16, TimeSpan.FromSeconds(60), n => $"{n} file handles open, {handlesBefore} before the flood");
        var warnings = File.ReadLines(Path.Combine(cluster.Folder, "silo-1.log")).Count(l => l.Contains("Worker links: "));
        Assert.True(warnings <= 30, $"silo 1 logged {warnings} warnings about the flood");
        TestContext.Current.TestOutputHelper?.WriteLine($"silo 1: {handlesBefore} file handles before the flood, peak {peakHandles}; peak RSS {peakRssMb} MB; " +
            $"{warnings} warning lines; the flood took {flooding.Elapsed.TotalSeconds:F1} s; the job's {steps} steps completed; restores: {cluster.LogLines($"Job {target}: ").Split('\n').Count(l => l.Contains("restoring the checkpoint"))}");

        var disturbed = Path.Combine(cluster.Folder, "disturbed");
        var saved = await cluster.TrainerAsync("result", target, "--save", $"npy:{disturbed}");
        Assert.True(saved.Code == 0, saved.ToString());
        var reference = await referenceRun;
        Assert.True(reference.Code == 0, reference.ToString());
        Assert.Equal(TrainJson.StepLosses(reference.Out), TrainJson.StepLosses(result.Out));
        Weights.AssertSameBytes(undisturbed, disturbed, "after the flood");
    }

    /// <summary>
    /// Greetings for made-up jobs (sent, then closed), then, held open: greetings naming the job's
    /// worker 1 under made-up runs, idle connections, random bytes and lying length headers.
    /// </summary>
    private static async Task<List<Socket>> FloodAsync(IPEndPoint port, string job)
    {
        var held = new List<Socket>();
        await Parallel.ForAsync(0, MadeUpGreetings, new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = Token }, async (i, cancel) =>
        {
            using var socket = await SiloProbe.ConnectAsync(port, cancel);
            await socket.SendAsync(Greeting($"made-up-{i}", i, 0, 1), SocketFlags.None, cancel);
        });
        for (int i = 0; i < GreetingsForTheJob; i++)
        {
            held.Add(await SiloProbe.ConnectAsync(port, Token));
            await held[^1].SendAsync(Greeting(job, Random.Shared.NextInt64(), 0, 1), SocketFlags.None, Token);
        }
        for (int i = 0; i < IdleConnections; i++) held.Add(await SiloProbe.ConnectAsync(port, Token));
        for (int i = 0; i < Garbage; i++)
        {
            held.Add(await SiloProbe.ConnectAsync(port, Token));
            // Half random bytes; half a greeting whose job id says 1024 bytes and brings 10.
            var bytes = i % 2 == 0 ? SiloProbe.RandomBytes(64) : Greeting(job, 1, 0, 1)[..28].Concat(new byte[10]).ToArray();
            if (i % 2 == 1) BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(24), 1024);
            await held[^1].SendAsync(bytes, SocketFlags.None, Token);
        }
        return held;
    }

    /// <summary>A link greeting as a silo's worker sends it: "TRNT", version 2, run, from, to, the job id's length, the job id.</summary>
    internal static byte[] Greeting(string job, long run, int from, int to)
    {
        var id = Encoding.UTF8.GetBytes(job);
        var bytes = new byte[28 + id.Length];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, 0x544E5254);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), 2);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8), run);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(16), from);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(20), to);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(24), id.Length);
        id.CopyTo(bytes, 28);
        return bytes;
    }

    [GeneratedRegex(@"Worker links listen on (\S+)")]
    private static partial Regex LinksListen();
}
