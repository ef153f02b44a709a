using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Trainer.Process.Tests;

/// <summary>
/// Orleans' own ports take connections from anyone who reaches them. Random bytes, connection
/// preambles whose length field lies (past Orleans' 1 KiB limit, or within it with the bytes never
/// sent) and idle connections, on every silo's silo port and gateway while a job trains, must leave
/// the silos up, their file handles and memory bounded, and the job with the bits of an undisturbed run
/// (the link port is LinkPortFloodTests').
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class OrleansPortGarbageTests
{
    private const int RandomConnections = 100, LyingPreambles = 100, IdleConnections = 200;
    // What a silo may open besides the connections held: connections being accepted, Orleans' and the clients'.
    private const int InFlight = 128;
    private const long RssGrowthMb = 150;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GarbageAndIdleConnectionsOnTheSiloAndGatewayPorts_LeaveTheSilosUpAndBounded_AndAJobEndsWithItsUndisturbedBits()
    {
        await using var cluster = await LocalCluster.CreateAsync(silos: 2, "--blas-threads 1");
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
        // Every connection held is a handle in the silo until it is closed: the worst moment is now, once the silos took them up.
        for (int s = 0; s < pids.Length; s++)
        {
            int pid = pids[s], before = handlesBefore[s];
            await Poll.UntilAsync(() => Task.FromResult(SiloProbe.OpenFiles(pid)), n => n >= before + IdleConnections, TimeSpan.FromSeconds(30),
                n => $"silo {s}: {n} file handles open, {before} before the flood");
        }
        await sampling.CancelAsync();
        var sampled = await Task.WhenAll(peaks);
        foreach (var socket in floods.SelectMany(f => f.Held)) socket.Dispose();

        Assert.True(endedDuringFlood.Length == 0, $"the job ended before the flood did: nothing was shown ({endedDuringFlood})");
        // Per port: the connections held, and the random ones until the silo has read their close.
        int opened = IdleConnections + LyingPreambles + RandomConnections;
        for (int s = 0; s < pids.Length; s++)
        {
            Assert.True(File.Exists($"/proc/{pids[s]}/status"), $"silo {s} died under the flood; log: {cluster.Folder}/silo-{s}.log");
            Assert.True(sampled[s].Handles <= handlesBefore[s] + 2 * opened + InFlight,
                $"silo {s} had {sampled[s].Handles} file handles open during the flood, {handlesBefore[s]} before it ({2 * opened} connections opened on its two ports + {InFlight} in flight allowed)");
            Assert.True(sampled[s].RssMb <= rssBefore[s] + RssGrowthMb, $"silo {s} grew from {rssBefore[s]} MB to {sampled[s].RssMb} MB resident during the flood");
        }
        // Closed by the client, the held connections leave the silos.
        for (int s = 0; s < pids.Length; s++)
        {
            int pid = pids[s], before = handlesBefore[s];
            await Poll.UntilAsync(() => Task.FromResult(SiloProbe.OpenFiles(pid)), n => n <= before + 32, TimeSpan.FromSeconds(60), n => $"silo {s}: {n} file handles open, {before} before the flood");
        }

        var result = await cluster.TrainerAsync(TimeSpan.FromMinutes(5), "watch", target, "--from-start", "--json");
        Assert.True(result.Code == 0, result.ToString());
        Assert.Equal("completed", TrainJson.FinalEvent(result.Out).GetProperty("event").GetString());
        long garbageBytes = floods.Sum(f => f.Bytes);
        cluster.Report($"{ports.Length} ports flooded in {flooding.Elapsed.TotalSeconds:F1} s: {floods.Sum(f => f.Connections)} connections, {garbageBytes} bytes; "
            + string.Join("; ", Enumerable.Range(0, pids.Length).Select(s => $"silo {s}: {handlesBefore[s]} -> peak {sampled[s].Handles} file handles, {rssBefore[s]} -> peak {sampled[s].RssMb} MB resident")));

        var disturbed = Path.Combine(cluster.Folder, "disturbed");
        var saved = await cluster.TrainerAsync("result", target, "--save", $"npy:{disturbed}");
        Assert.True(saved.Code == 0, saved.ToString());
        var undisturbed = Path.Combine(cluster.Folder, "undisturbed");
        var reference = await cluster.TrainerAsync(["train", .. job, "--steps", $"{steps}", "--save", $"npy:{undisturbed}", "--json"]);
        Assert.True(reference.Code == 0, reference.ToString());
        Assert.Equal(TrainJson.StepLosses(reference.Out), TrainJson.StepLosses(result.Out));
        Weights.AssertSameBytes(undisturbed, disturbed, "after the garbage");
    }

    private sealed record Flood(List<Socket> Held, int Connections, long Bytes);

    /// <summary>
    /// Random bytes (64 KiB, then closed); preambles claiming 1 GiB or 1,000 bytes with 16 sent (held
    /// open); idle connections (held open).
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
            held.Add(await SiloProbe.ConnectAsync(port, Token));
            var preamble = new byte[4 + 16];
            BinaryPrimitives.WriteInt32LittleEndian(preamble, i % 2 == 0 ? 1 << 30 : 1000);
            try { await held[^1].SendAsync(preamble, SocketFlags.None, Token); }
            catch (SocketException) { }
            bytes += preamble.Length;
        }
        for (int i = 0; i < IdleConnections; i++) held.Add(await SiloProbe.ConnectAsync(port, Token));
        return new Flood(held, RandomConnections + LyingPreambles + IdleConnections, bytes);
    }
}
