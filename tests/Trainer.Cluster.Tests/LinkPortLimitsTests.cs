using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Anyone who reaches a silo's link port can connect, so what the silo holds for connections no
/// worker has claimed is bounded: greetings for workers without a run on the silo are refused at
/// once, the rest are capped (oldest closed first) and closed after the link setup time, and the
/// refusals are logged a line per period, not a line each.
/// </summary>
public sealed class LinkPortLimitsTests
{
    private const string Job = "limits-test";
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GreetingsForWorkersWithNoRunOnTheSilo_AreRefusedAtOnce_WithOneWarningForTheFlood()
    {
        var log = new LogCapture();
        using var silo = Links(log: log);

        // 200 well-formed greetings for made-up jobs: each is closed by the silo, none is held.
        for (int i = 0; i < 200; i++)
        {
            using var stranger = await ConnectAsync(silo);
            await stranger.SendAsync(LinkHello.Encode(new($"made-up-{i}", i, 0, 1)), SocketFlags.None, Token);
            await ClosedBySiloAsync(stranger);
        }

        Assert.Equal(0, silo.Unclaimed);
        var warnings = log.Lines.Where(l => l.Contains("a connection was refused")).ToList();
        // The first is logged as it happens; the rest within the period are counted, not logged.
        Assert.InRange(warnings.Count, 1, 2);
        Assert.Contains("job made-up-0 has no worker 1 with a run on this silo", warnings[0]);
    }

    [Fact]
    public async Task UnclaimedConnections_AreCappedOldestFirst_AndWorkersStillLinkUp()
    {
        using var a = Links();
        using var b = Links(maxUnclaimed: 8);
        b.Prepare(Job, 1);
        // 20 greetings for the prepared worker, from runs that never start, then 20 idle connections.
        var strangers = new List<Socket>();
        for (int i = 0; i < 20; i++)
        {
            strangers.Add(await ConnectAsync(b));
            await strangers[^1].SendAsync(LinkHello.Encode(new(Job, 1000 + i, 0, 1)), SocketFlags.None, Token);
        }
        for (int i = 0; i < 20; i++) strangers.Add(await ConnectAsync(b));

        await WorkerLinksTests.UntilAsync(() => b.Unclaimed == 8, "silo b holds 8 unclaimed connections");
        // The oldest went first: every greeting was closed to make room for the idle connections.
        foreach (var greeting in strangers.Take(20)) await ClosedBySiloAsync(greeting);
        Assert.Equal(0, b.Parked(Job));

        // A run's own link is the newest connection: it is claimed, and blocks cross it.
        string[] endpoints = [a.Endpoint, b.Endpoint];
        a.Prepare(Job, 0);
        var opening = new[] { a.OpenAsync(Job, 1, 0, endpoints, cancel: Token), b.OpenAsync(Job, 1, 1, endpoints, cancel: Token) };
        var links = await Task.WhenAll(opening);
        links[0][1]!.Send(1, new byte[80]);
        links[1][0]!.Receive(1, new byte[80]);
        Assert.InRange(b.Unclaimed, 0, 8);
        foreach (var stranger in strangers) stranger.Dispose();
    }

    [Fact]
    public async Task UnclaimedConnections_AreClosedAfterTheLinkSetupTime()
    {
        using var silo = Links(linkTimeout: TimeSpan.FromSeconds(1));
        silo.Prepare(Job, 1);
        using var idle = await ConnectAsync(silo);
        using var parked = await ConnectAsync(silo);
        await parked.SendAsync(LinkHello.Encode(new(Job, 7, 0, 1)), SocketFlags.None, Token);

        await ClosedBySiloAsync(idle);
        await ClosedBySiloAsync(parked);
        await WorkerLinksTests.UntilAsync(() => silo.Unclaimed == 0, "the silo holds no connection");
    }

    /// <summary>The silo closed <paramref name="socket"/>: a read sees its end (or a reset), within 10 s.</summary>
    private static async Task ClosedBySiloAsync(Socket socket)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Token);
        deadline.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            Assert.Equal(0, await socket.ReceiveAsync(new byte[16], SocketFlags.None, deadline.Token));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
    }

    private static async Task<Socket> ConnectAsync(WorkerLinks silo)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPEndPoint.Parse(silo.Endpoint), Token);
        return socket;
    }

    private static WorkerLinks Links(int maxUnclaimed = 256, TimeSpan? linkTimeout = null, LogCapture? log = null) =>
        new(new TestSiloDetails(), Options.Create(new TrainerOptions { MaxUnclaimedLinks = maxUnclaimed, SplitLinkTimeout = linkTimeout ?? TimeSpan.FromSeconds(30) }),
            LoggerFactory.Create(b => b.AddProvider(log ?? new LogCapture())).CreateLogger<WorkerLinks>());
}
