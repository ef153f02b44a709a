using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Trainer.Process.Tests;

/// <summary>
/// Orleans' own ports take connections from anyone who reaches them. Random bytes, connection
/// preambles whose length field lies (past Orleans' 1 KiB limit, or within it with the bytes never
/// sent), idle connections and a flood of them past the cap on connections waiting for their
/// preamble, on every silo's silo port and gateway while a job trains, must leave the silos up, their
/// file handles and memory bounded, what was held open closed by the silos at its preamble deadline,
/// and the job with the bits of an undisturbed run (the link port is LinkPortFloodTests').
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class OrleansPortGarbageTests
{
    private const int RandomConnections = 100, LyingPreambles = 100, IdleConnections = 200, BeyondTheCap = 1000;
    // Trainer:MaxPendingInboundConnections and Trainer:InboundPreambleTimeout for these silos: the flood
    // overflows the cap, and what it holds expires only after the cap alone has been seen to bound it.
    private const int MaxPending = 64;
    private static readonly TimeSpan PreambleTimeout = TimeSpan.FromSeconds(30);
    // What a silo may hold besides the connections waiting for their preamble: Orleans' own, the clients',
    // and connections accepted but not yet refused. Without the cap the flood would hold 2,600 per silo.
    private const int InFlight = 64;
    private const long RssGrowthMb = 150;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GarbageIdleConnectionsAndAFloodPastTheCap_OnTheSiloAndGatewayPorts_AreClosedByTheSilos_AndAJobEndsWithItsUndisturbedBits()
    {
        await using var cluster = await LocalCluster.CreateAsync(silos: 2,
            $"--blas-threads 1 --Trainer:MaxPendingInboundConnections={MaxPending} --Trainer:InboundPreambleTimeout={PreambleTimeout:c}");
        await cluster.StartAsync();
        string[] job = ["--model", "1000-100-10", "--workers", "2", "--seed", "0", "--parallel", "data", "--checkpoint-every", "50", "--checkpoint-min-seconds", "0"];
        int steps = await TrainJson.StepsForAsync(cluster, job, calibrationSteps: 300, seconds: 25, minSteps: 3000);
        int[] pids = [cluster.Pid(0), cluster.Pid(1)];
        var handlesBefore = pids.Select(SiloProbe.OpenFiles).ToArray();
        var rssBefore = pids.Select(SiloProbe.ResidentMb).ToArray();

        var submitted = await cluster.TrainerAsync(["submit", .. job, "--steps", $"{steps}"]);
        Assert.True(submitted.Code == 0, submitted.ToString());
        string target = submitted.Out.Trim();

        using var sampling = new CancellationTokenSource();
        var peaks = pids.Select(pid => SiloProbe.SamplePeakAsync(pid, sampling.Token)).ToArray();
        IPEndPoint[] ports = [.. Enumerable.Range(0, cluster.Silos).SelectMany(i => new[]
            { new IPEndPoint(IPAddress.Loopback, cluster.BaseSiloPort + i), new IPEndPoint(IPAddress.Loopback, cluster.BaseGatewayPort + i) })];
        var flooding = System.Diagnostics.Stopwatch.StartNew();
        var floods = await Task.WhenAll(ports.Select(FloodAsync));
        flooding.Stop();
        string endedDuringFlood = cluster.LogLines($"Job {target} Completed");
        // The client still holds every connection open. NOTE: Orleans accepts connections without limit and
        // hands each to the cap on the thread pool, so a burst on busy cores briefly holds more than the cap
        // (the peak is reported, not bounded); once the silos have caught up, only the cap's are left.
        var capped = new int[pids.Length];
        for (int s = 0; s < pids.Length; s++)
        {
            int pid = pids[s], before = handlesBefore[s];
            capped[s] = await Poll.UntilAsync(() => Task.FromResult(SiloProbe.OpenFiles(pid)), n => n <= before + 2 * MaxPending + InFlight, PreambleTimeout / 2,
                n => $"silo {s}: {n} file handles open, {before} before the flood, which the client holds open (at most {MaxPending} connections waiting for their preamble on each of its two ports + {InFlight} allowed)");
        }
        // The reference: the same job undisturbed, in one process beside the cluster's, once the flood is over
        // (the silos now only wait out their preamble deadline).
        var undisturbed = Path.Combine(cluster.Folder, "undisturbed");
        var referenceRun = cluster.EmbeddedTrainerAsync(["train", .. job, "--steps", $"{steps}", "--save", $"npy:{undisturbed}", "--json"]);
        // Then the silos close those too, once their preamble deadline has passed.
        var closed = System.Diagnostics.Stopwatch.StartNew();
        for (int s = 0; s < pids.Length; s++)
        {
            int pid = pids[s], before = handlesBefore[s];
            await Poll.UntilAsync(() => Task.FromResult(SiloProbe.OpenFiles(pid)), n => n <= before + 32, PreambleTimeout * 2,
                n => $"silo {s}: {n} file handles open, {before} before the flood, which the client still holds open");
        }
        closed.Stop();
        await sampling.CancelAsync();
        var sampled = await Task.WhenAll(peaks);
        foreach (var socket in floods.SelectMany(f => f.Held)) socket.Dispose();

        Assert.True(endedDuringFlood.Length == 0, $"the job ended before the flood did: nothing was shown ({endedDuringFlood})");
        for (int s = 0; s < pids.Length; s++)
        {
            Assert.True(File.Exists($"/proc/{pids[s]}/status"), $"silo {s} died under the flood; log: {cluster.Folder}/silo-{s}.log");
            Assert.True(sampled[s].RssMb <= rssBefore[s] + RssGrowthMb, $"silo {s} grew from {rssBefore[s]} MB to {sampled[s].RssMb} MB resident during the flood");
        }
        var warnings = Enumerable.Range(0, pids.Length).Select(s => File.ReadLines(Path.Combine(cluster.Folder, $"silo-{s}.log"))
            .Where(l => l.Contains("Silo port: ") || l.Contains("Gateway port: ")).ToList()).ToArray();
        foreach (var kind in new[] { "Silo port", "Gateway port" })
        {
            Assert.Contains(warnings[1], l => l.Contains($"{kind}: a connection sent no preamble within {PreambleTimeout.TotalSeconds} s (Trainer:InboundPreambleTimeout) and was closed"));
            Assert.Contains(warnings[1], l => l.Contains($"{kind}: a connection was closed at once: {MaxPending} connections were waiting for their preamble"));
        }
        Assert.All(warnings, w => Assert.True(w.Count <= 30, $"a silo logged {w.Count} warnings about the flood:\n{string.Join('\n', w.Take(40))}"));

        var result = await cluster.TrainerAsync(TimeSpan.FromMinutes(5), "watch", target, "--from-start", "--json");
        Assert.True(result.Code == 0, result.ToString());
        Assert.Equal("completed", TrainJson.FinalEvent(result.Out).GetProperty("event").GetString());
        long garbageBytes = floods.Sum(f => f.Bytes);
        cluster.Report($"{ports.Length} ports flooded in {flooding.Elapsed.TotalSeconds:F1} s: {floods.Sum(f => f.Connections)} connections, {garbageBytes} bytes; "
            + $"the rest closed by the silos {closed.Elapsed.TotalSeconds:F1} s later; "
            + string.Join("; ", Enumerable.Range(0, pids.Length).Select(s => $"silo {s}: {handlesBefore[s]} -> peak {sampled[s].Handles} file handles, {capped[s]} under the cap, {rssBefore[s]} -> peak {sampled[s].RssMb} MB resident, {warnings[s].Count} warning lines")));

        var disturbed = Path.Combine(cluster.Folder, "disturbed");
        var saved = await cluster.TrainerAsync("result", target, "--save", $"npy:{disturbed}");
        Assert.True(saved.Code == 0, saved.ToString());
        var reference = await referenceRun;
        Assert.True(reference.Code == 0, reference.ToString());
        Assert.Equal(TrainJson.StepLosses(reference.Out), TrainJson.StepLosses(result.Out));
        Weights.AssertSameBytes(undisturbed, disturbed, "after the garbage");
    }

    private sealed record Flood(List<Socket> Held, int Connections, long Bytes);

    /// <summary>
    /// Random bytes (64 KiB, then closed); preambles claiming 1 GiB or 1,000 bytes with 16 sent (held
    /// open); idle connections (held open), then as many again and more, past the cap (held open).
    /// </summary>
    private static async Task<Flood> FloodAsync(IPEndPoint port)
    {
        long bytes = 0;
        await Parallel.ForAsync(0, RandomConnections, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = Token }, async (_, cancel) =>
        {
            using var socket = await SiloProbe.ConnectAsync(port, cancel);
            var garbage = SiloProbe.RandomBytes(64 * 1024);
            // The silo may close the connection as soon as it has read enough to refuse it.
            try { await socket.SendAsync(garbage, SocketFlags.None, cancel); }
            catch (SocketException) { }
            Interlocked.Add(ref bytes, garbage.Length);
        });
        var held = new List<Socket>();
        for (int i = 0; i < LyingPreambles; i++)
        {
            if (await HeldAsync(port) is not { } socket) continue;
            held.Add(socket);
            var preamble = new byte[4 + 16];
            BinaryPrimitives.WriteInt32LittleEndian(preamble, i % 2 == 0 ? 1 << 30 : 1000);
            try { await socket.SendAsync(preamble, SocketFlags.None, Token); }
            catch (SocketException) { }
            bytes += preamble.Length;
        }
        for (int i = 0; i < IdleConnections + BeyondTheCap; i++)
            if (await HeldAsync(port) is { } socket) held.Add(socket);
        return new Flood(held, RandomConnections + LyingPreambles + IdleConnections + BeyondTheCap, bytes);
    }

    /// <summary>A connection to hold open; null when the silo closed it before the connect returned (the cap was full: it closes those at once).</summary>
    private static async Task<Socket?> HeldAsync(IPEndPoint port)
    {
        try { return await SiloProbe.ConnectAsync(port, Token); }
        catch (SocketException) { return null; }
    }
}
