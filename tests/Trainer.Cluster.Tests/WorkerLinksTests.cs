using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// The links that carry workers' blocks (a split job's activations, a data-parallel job's packs): TCP between silos,
/// in-process within one. Each test plays two silos with two <see cref="WorkerLinks"/> on loopback.
/// </summary>
public sealed class WorkerLinksTests
{
    private const string Job = "links-test";
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task BlocksCrossATcpLinkBetweenTwoSilos_BothWays_InStepOrder(bool tls)
    {
        using var a = Links(tls: tls);
        using var b = Links(tls: tls);
        var (zero, one) = await LinkAsync(a, b);
        Assert.IsType<TcpLink>(zero);

        for (int step = 1; step <= 5; step++)
        {
            zero.Send(step, Block(0, step, 800));
            one.Send(step, Block(1, step, 800));
        }
        for (int step = 1; step <= 5; step++)
        {
            Assert.Equal(Block(1, step, 800), Receive(zero, step, 800));
            Assert.Equal(Block(0, step, 800), Receive(one, step, 800));
        }
    }

    [Fact]
    public async Task FramesOfChangingLengths_EachArriveWithTheirOwnLength()
    {
        // A data-parallel step's frames alternate a small header and a large block; the sender keeps one buffer for both.
        using var a = Links();
        using var b = Links();
        var (zero, one) = await LinkAsync(a, b);
        int[] lengths = [8, 800_000, 8, 800_000, 24, 1_600_000, 8];

        for (int i = 0; i < lengths.Length; i++) zero.Send(i + 1, Block(0, i + 1, lengths[i]));
        for (int i = 0; i < lengths.Length; i++) Assert.Equal(Block(0, i + 1, lengths[i]), Receive(one, i + 1, lengths[i]));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("0.0.0.0")]
    public async Task SilosOnDifferentAddresses_LinkAtTheirOwnAddress(string? linkAddress)
    {
        // Linux routes all of 127/8 to loopback: two silos on two addresses of one machine. With
        // Trainer:SplitLinkAddress 0.0.0.0 the port takes every interface; peers are told the silo's address.
        using var a = Links();
        using var b = new WorkerLinks(new TestSiloDetails(IPAddress.Parse("127.0.0.2")),
            Options.Create(new TrainerOptions { SplitLinkAddress = linkAddress }), NullLogger<WorkerLinks>.Instance);
        Assert.StartsWith("127.0.0.2:", b.Endpoint);

        var (zero, one) = await LinkAsync(a, b);
        zero.Send(1, Block(0, 1, 800));
        Assert.Equal(Block(0, 1, 800), Receive(one, 1, 800));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task LargeBlocksSentByBothWorkersAtOnce_DoNotWaitForEachOther(bool tls)
    {
        // 8 MB each way is far beyond the sockets' buffers: sending both before either reads must not hang.
        using var a = Links(tls: tls);
        using var b = Links(tls: tls);
        var (zero, one) = await LinkAsync(a, b);
        const int length = 8 << 20;
        zero.Send(1, Block(0, 1, length));
        one.Send(1, Block(1, 1, length));

        var atOne = Task.Run(() => Receive(one, 1, length), Token);
        Assert.Equal(Block(1, 1, length), Receive(zero, 1, length));
        Assert.Equal(Block(0, 1, length), await atOne);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WhenAWorkerStops_ItsPeersReadFailsAtOnce_NamingIt(bool tls)
    {
        using var a = Links(tls: tls);
        using var b = Links(tls: tls);
        var (zero, one) = await LinkAsync(a, b);
        var reading = Task.Run(() => Receive(zero, 1, 800), Token);

        one.Dispose();

        var error = await Assert.ThrowsAsync<IOException>(() => reading);
        Assert.Contains("worker 1", error.Message);
    }

    [Fact]
    public async Task ABlockOfTheWrongStep_IsAProtocolError_NamingBothSteps()
    {
        using var a = Links();
        using var b = Links();
        var (zero, one) = await LinkAsync(a, b);
        one.Send(2, Block(1, 2, 800));

        var error = Assert.Throws<InvalidDataException>(() => Receive(zero, 1, 800));
        Assert.Contains("step 2", error.Message);
        Assert.Contains("step 1", error.Message);
    }

    [Fact]
    public async Task AConnectionThatIsNotATrainerLink_IsClosed_AndWorkersStillLinkUp()
    {
        using var a = Links();
        using var b = Links();
        using (var stranger = new TcpClient())
        {
            await stranger.ConnectAsync(IPEndPoint.Parse(b.Endpoint), Token);
            var stream = stranger.GetStream();
            await stream.WriteAsync(Enumerable.Repeat((byte)'x', 64).ToArray(), Token);
            // The silo reads the greeting, refuses it and closes the connection (a reset, as bytes were left unread).
            var closed = await Record.ExceptionAsync(async () => Assert.Equal(0, await stream.ReadAsync(new byte[16], Token)));
            Assert.True(closed is null or IOException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionReset } }, $"the connection stayed open: {closed}");
        }

        var (zero, one) = await LinkAsync(a, b);
        zero.Send(1, Block(0, 1, 80));
        Assert.Equal(Block(0, 1, 80), Receive(one, 1, 80));
    }

    [Fact]
    public async Task WorkersOfOneSilo_LinkInProcess_AndAStoppedWorkerFailsItsPeersRead()
    {
        using var a = Links();
        var (zero, one) = await LinkAsync(a, a);
        Assert.IsType<LocalPeer>(zero);

        zero.Send(1, Block(0, 1, 80));
        one.Send(1, Block(1, 1, 80));
        Assert.Equal(Block(1, 1, 80), Receive(zero, 1, 80));
        Assert.Equal(Block(0, 1, 80), Receive(one, 1, 80));

        one.Dispose();
        var error = Assert.Throws<IOException>(() => Receive(zero, 2, 80));
        Assert.Contains("worker 1", error.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ASharedBlock_ReachesAPeerOfTheSameSiloAsTheSenderOwnArray_AndAPeerOfAnotherSiloAsACopy(bool sameSilo)
    {
        using var a = Links();
        using var b = sameSilo ? null : Links();
        var (zero, one) = await LinkAsync(a, b ?? a);
        var block = Block(0, 1, 800);

        zero.SendShared(1, block);
        var received = one.Receive(1, length => new byte[length]);

        Assert.Equal(Block(0, 1, 800), received);
        // In process the parameter server's parameters and a worker's pack (800 KB each for the seed job) are not copied twice a step.
        Assert.Equal(sameSilo, ReferenceEquals(block, received));
        // A shared block is checked as any other: the wrong step is a protocol error.
        zero.SendShared(3, block);
        Assert.Throws<InvalidDataException>(() => one.Receive(2, length => new byte[length]));
    }

    [Fact]
    public async Task AWorkerWhosePeerNeverLinks_GivesUpAfterTheLinkTimeout_NamingThePeer()
    {
        using var a = Links();
        using var b = Links(linkTimeout: TimeSpan.FromSeconds(1));
        // Worker 1 waits for worker 0, whose run never starts.
        var error = await Assert.ThrowsAsync<IOException>(() => b.OpenAsync(Job, 1, 1, [a.Endpoint, b.Endpoint], cancel: Token));
        Assert.Contains("worker 0 did not link to worker 1", error.Message);
    }

    [Fact]
    public async Task ALinkNoWorkerTakesUp_IsClosedWhenItsWorkerGoesAway_AndItsOpenerHearsSoAtOnce()
    {
        using var a = Links();
        using var b = Links();
        // Worker 0 links to worker 1, whose run never starts on silo b; then worker 1 is deactivated.
        b.Prepare(Job, 1);
        var opening = a.OpenAsync(Job, 1, 0, [a.Endpoint, b.Endpoint], cancel: Token);
        await UntilAsync(() => b.Parked(Job) == 1, "silo b holds worker 0's greeting");

        b.Release(Job, 1);

        Assert.Equal(0, b.Parked(Job));
        var error = await Assert.ThrowsAsync<IOException>(() => opening);
        Assert.Contains("worker 1", error.Message);
        Assert.Contains("the connection closed", error.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task OpeningLinks_AnswersOnlyOnceThePeerHasTakenUpItsEnd(bool sameSilo)
    {
        using var a = Links();
        using var b = Links();
        var other = sameSilo ? a : b;
        string[] endpoints = [a.Endpoint, other.Endpoint];
        other.Prepare(Job, 1);
        var zero = a.OpenAsync(Job, 1, 0, endpoints, cancel: Token);
        // Worker 0 has sent its greeting (over TCP: silo b holds it); worker 1 has not started its run.
        if (!sameSilo) await UntilAsync(() => b.Parked(Job) == 1, "silo b holds worker 0's greeting");

        Assert.False(zero.IsCompleted, "worker 0's links opened before worker 1 took up its end");
        var one = await other.OpenAsync(Job, 1, 1, endpoints, cancel: Token);
        (await zero)[1]!.Send(1, Block(0, 1, 80));
        Assert.Equal(Block(0, 1, 80), Receive(one[0]!, 1, 80));
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(false, true)]
    public async Task AReadThatSeesNothingForTheLinkReadTimeout_Fails_NamingThePeerAndTheSetting(bool sameSilo, bool tls)
    {
        using var a = Links(readTimeout: TimeSpan.FromSeconds(1), tls: tls);
        using var b = Links(readTimeout: TimeSpan.FromSeconds(1), tls: tls);
        // Worker 1 is linked but hung: it never sends. (Its link is kept: a collected socket would close.)
        var (zero, one) = await LinkAsync(a, sameSilo ? a : b);
        using var hung = one;

        var error = await Assert.ThrowsAsync<IOException>(() => Task.Run(() => Receive(zero, 1, 80), Token));
        Assert.Contains("worker 1", error.Message);
        Assert.Contains("Trainer:LinkReadTimeout", error.Message);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(false, true)]
    public async Task ASendThePeerNeverTakes_FailsAfterTheLinkReadTimeout_NamingThePeerAndTheSetting(bool sameSilo, bool tls)
    {
        using var a = Links(readTimeout: TimeSpan.FromSeconds(1), tls: tls);
        using var b = Links(readTimeout: TimeSpan.FromSeconds(1), tls: tls);
        // Worker 1 is linked but hung: it never reads. 8 MB blocks fill the sockets' buffers; in process, two blocks fill the queue.
        var (zero, one) = await LinkAsync(a, sameSilo ? a : b);
        using var hung = one;
        const int length = 8 << 20;

        var error = await Assert.ThrowsAsync<IOException>(() => Task.Run(() =>
        {
            for (int step = 1; step <= 3; step++) zero.Send(step, Block(0, step, length));
        }, Token));
        Assert.Contains("worker 1", error.Message);
        Assert.Contains("Trainer:LinkReadTimeout", error.Message);
    }

    [Fact]
    public async Task ASiloWithAnotherCertificate_CannotLinkToATlsSilo_AndTheRefusalIsLogged()
    {
        var log = new LogCapture();
        using var a = Links(linkTimeout: TimeSpan.FromSeconds(2), security: new LinkSecurity(Certificate("stranger")));
        using var b = Links(linkTimeout: TimeSpan.FromSeconds(2), security: ClusterLinks.Value, log: log);
        string[] endpoints = [a.Endpoint, b.Endpoint];

        // Worker 0 (the stranger's silo) connects to worker 1's: each side refuses the other's certificate.
        var one = Assert.ThrowsAsync<IOException>(() => b.OpenAsync(Job, 1, 1, endpoints, cancel: Token));
        var zero = await Assert.ThrowsAsync<IOException>(() => a.OpenAsync(Job, 1, 0, endpoints, cancel: Token));

        Assert.Contains("worker 0 could not link to worker 1", zero.Message);
        Assert.Contains("worker 0 did not link to worker 1 within 2 s", (await one).Message);
        Assert.Contains(log.Lines, l => l.Contains("Worker links: a connection failed authentication and was closed") && l.Contains("cluster's certificate"));
    }

    /// <summary>Worker 0 on silo <paramref name="a"/> and worker 1 on silo <paramref name="b"/>, linked for run 1.</summary>
    private static async Task<(IBlockLink Zero, IBlockLink One)> LinkAsync(WorkerLinks a, WorkerLinks b)
    {
        // As the parameter server does: every worker of the run is prepared before any opens its links.
        a.Prepare(Job, 0);
        b.Prepare(Job, 1);
        string[] endpoints = [a.Endpoint, b.Endpoint];
        var zero = a.OpenAsync(Job, 1, 0, endpoints, cancel: Token);
        var one = b.OpenAsync(Job, 1, 1, endpoints, cancel: Token);
        return ((await zero)[1]!, (await one)[0]!);
    }

    [Fact]
    public async Task TheListener_StartedFromAGrainsScheduler_KeepsNoReferenceToIt()
    {
        // The first worker to ask for the endpoint starts the listener. Its accept loop used to resume
        // on that worker's activation scheduler for ever, which kept the deactivated worker (and its
        // replica: 1.6 GB for a 50M model) reachable.
        using var links = Links();
        // On threads of their own, joined before collecting: no stack frame can still hold the scheduler.
        WeakReference? scheduler = null;
        var starter = new Thread(() => scheduler = StartListenerOnASchedulerOfItsOwn(links));
        starter.Start();
        starter.Join();

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.False(scheduler!.IsAlive, "the listener's accept loop still references the scheduler it was started from");
        // And the listener still accepts: a link opens through it.
        using var other = Links();
        var (zero, _) = await LinkAsync(links, other);
        Assert.IsType<TcpLink>(zero);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference StartListenerOnASchedulerOfItsOwn(WorkerLinks links)
    {
        var scheduler = new ThreadPerTaskScheduler();
        Task.Factory.StartNew(() => links.Endpoint, CancellationToken.None, TaskCreationOptions.None, scheduler).GetAwaiter().GetResult();
        scheduler.JoinAll();
        return new WeakReference(scheduler);
    }

    /// <summary>Stands in for a grain activation's scheduler: a TaskScheduler that is not the default one.</summary>
    private sealed class ThreadPerTaskScheduler : TaskScheduler
    {
        private readonly List<Thread> _threads = [];

        public void JoinAll()
        {
            Thread[] threads;
            lock (_threads) threads = [.. _threads];
            foreach (var thread in threads) thread.Join();
        }

        protected override void QueueTask(Task task)
        {
            var thread = new Thread(() => TryExecuteTask(task)) { IsBackground = true };
            lock (_threads) _threads.Add(thread);
            thread.Start();
        }

        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;

        protected override IEnumerable<Task> GetScheduledTasks() => [];
    }

    private static byte[] Block(int rank, int step, int length)
    {
        var block = new byte[length];
        new Random(rank * 1000 + step).NextBytes(block);
        return block;
    }

    private static byte[] Receive(IBlockLink link, int step, int length)
    {
        var block = new byte[length];
        link.Receive(step, block);
        return block;
    }

    /// <summary>Polls <paramref name="condition"/> until it holds, failing after 10 s.</summary>
    internal static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within 10 s: {what}");
            await Task.Delay(10, Token);
        }
    }

    /// <param name="tls">Links over TLS with one cluster certificate (shared by every silo of the test), as a TLS cluster's.</param>
    private static WorkerLinks Links(TimeSpan? linkTimeout = null, TimeSpan? readTimeout = null, bool tls = false, LinkSecurity? security = null, LogCapture? log = null) =>
        new(new TestSiloDetails(), Options.Create(new TrainerOptions { SplitLinkTimeout = linkTimeout ?? TimeSpan.FromSeconds(30), LinkReadTimeout = readTimeout ?? TimeSpan.FromSeconds(30) }),
            log is null ? NullLogger<WorkerLinks>.Instance : new LoggerFactory([log]).CreateLogger<WorkerLinks>(), security ?? (tls ? ClusterLinks.Value : new LinkSecurity()));

    private static readonly Lazy<LinkSecurity> ClusterLinks = new(() => new LinkSecurity(Certificate("trainer-cluster")));

    /// <summary>A self-signed cluster certificate made now (no key is checked in).</summary>
    private static ClusterCertificate Certificate(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        return new ClusterCertificate(request.CreateSelfSigned(DateTimeOffset.Now.AddDays(-1), DateTimeOffset.Now.AddDays(1)));
    }
}
