using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// The links data plane: connections that carry each step's blocks outside Orleans' messaging,
/// between the workers of a split job (their activations), and between a data-parallel job's
/// parameter server (rank W of its run) and each of its workers (requests and packs, across silos). Workers of one silo share in-process links;
/// workers of different silos get one TCP connection per pair, opened once per run (generation)
/// through this silo's listener. Orleans stays the control plane: placement, membership, the
/// windows of steps, failures, checkpoints.
/// </summary>
/// <remarks>
/// NOTE (measured, the seed job split over two silo processes on 2 cores, timestamps in both
/// silos): an Orleans one-way message carrying a step's 25 KB block took 0.34 ms median and
/// 0.5-0.9 ms on average from the sender's compute thread to the receiver's, against 0.69 ms of
/// arithmetic per step: it crosses five threads (writer loop, socket engine, message dispatch,
/// the grain's turn, the compute thread), each wake-up slow on a VM, and spinning to avoid them
/// starved those very threads (8.3 s instead of 4.8 s per job). Here the receiving worker's own
/// thread blocks in the socket read: one wake-up per block. Hand-written because nothing in
/// .NET's or Orleans' box moves a buffer between two threads of two processes with less.
/// In a TLS cluster the connections run TLS with the cluster's certificate on both sides
/// (<see cref="LinkSecurity"/>); otherwise the listener (<see cref="LinkListener"/>) is
/// unauthenticated like the silo port itself: expose it only inside the cluster's network
/// (<see cref="TrainerOptions.SplitLinkPort"/> fixes its port for firewalls and pod specs). What it
/// holds for connections no worker has claimed is bounded, so a flood on the port cannot use up the
/// silo's file handles.
/// </remarks>
public sealed class WorkerLinks(ILocalSiloDetails silo, IOptions<TrainerOptions> options, ILogger<WorkerLinks> logger, LinkSecurity? security = null) : IDisposable
{
    private readonly LinkSecurity _security = security ?? new LinkSecurity();
    private readonly TrainerOptions _options = options.Value;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<LinkKey, LocalLink> _local = new();
    // The workers of this silo that have a run over links (job, rank): only their links are taken.
    private readonly ConcurrentDictionary<(string Job, int Rank), byte> _workers = new();
    // Those that went away since they last prepared (Release), and when: a link to one of them in process
    // would wait in vain. Kept for one SplitLinkTimeout, the longest such a wait lasts.
    private readonly ConcurrentDictionary<(string Job, int Rank), DateTime> _released = new();
    private LinkListener? _listener;
    private string? _endpoint;

    /// <summary>Where other silos' workers reach this silo's workers ("address:port"); unique per silo. Starts the listener on first use.</summary>
    public string Endpoint
    {
        get
        {
            _ = Listener;
            return _endpoint!;
        }
    }

    private LinkListener Listener
    {
        get
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
                if (_listener is null)
                {
                    var advertised = silo.SiloAddress.Endpoint.Address;
                    var address = string.IsNullOrWhiteSpace(_options.SplitLinkAddress) ? advertised : IPAddress.Parse(_options.SplitLinkAddress);
                    _listener = new LinkListener(new IPEndPoint(address, _options.SplitLinkPort), key => _workers.ContainsKey((key.Job, key.To)), _security, _options, logger);
                    // Listening on every interface, the silo tells other silos its advertised address.
                    _endpoint = new IPEndPoint(HostAddresses.IsAny(address) ? advertised : address, _listener.Endpoint.Port).ToString();
                    logger.LogInformation("Worker links listen on {Endpoint}{Tls}", _endpoint, _security.Tls ? " (TLS with the cluster's certificate)" : "");
                }
                return _listener;
            }
        }
    }

    /// <summary>
    /// Worker <paramref name="rank"/> of <paramref name="job"/> is about to run over links from this silo:
    /// connections to it are taken from now on (until <see cref="Release"/>). Answers <see cref="Endpoint"/>.
    /// </summary>
    internal string Prepare(string job, int rank)
    {
        string endpoint = Endpoint;
        _released.TryRemove((job, rank), out _);
        _workers[(job, rank)] = 0;
        return endpoint;
    }

    /// <summary>
    /// Opens worker <paramref name="rank"/>'s links to every other worker of the job's run
    /// <paramref name="generation"/>, whose silos' endpoints are <paramref name="endpoints"/> (by rank):
    /// in-process to workers of this silo; over TCP to others, the lower rank connecting. Answers
    /// once every other worker has taken up its end (within <see cref="TrainerOptions.SplitLinkTimeout"/>),
    /// so from then on a peer that sends nothing for <see cref="TrainerOptions.LinkReadTimeout"/> is hung,
    /// not still loading. Index <paramref name="rank"/> of the answer is null. Links of this worker's
    /// older runs are closed. <paramref name="peers"/>: the ranks to link to (null: every other rank;
    /// a data-parallel run links each worker to the parameter server only); the other indexes are null.
    /// <paramref name="cancel"/> gives up waiting for the peers (one of them will never come).
    /// </summary>
    internal async Task<IBlockLink?[]> OpenAsync(string job, long generation, int rank, IReadOnlyList<string> endpoints,
        IReadOnlyCollection<int>? peers = null, CancellationToken cancel = default)
    {
        string own = Prepare(job, rank);
        if (endpoints[rank] != own)
            throw new StateLostException($"Job {job}: worker {rank} is on the silo whose links are at {own}, not at {endpoints[rank]} as the run says (it moved since the run was prepared).");
        Sweep(job, generation, rank);
        var opening = new Task<IBlockLink>[endpoints.Count];
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token, cancel);
        for (int peer = 0; peer < endpoints.Count; peer++)
        {
            if (peer == rank || peers is not null && !peers.Contains(peer)) continue;
            opening[peer] = endpoints[peer] == own
                ? LinkInProcessAsync(new(job, generation, rank, peer), new(job, generation, peer, rank), stop.Token)
                : peer > rank
                    ? ConnectAsync(new(job, generation, rank, peer), endpoints[peer], stop.Token)
                    : AcceptAsync(new(job, generation, peer, rank), stop.Token);
        }
        var links = new IBlockLink?[endpoints.Count];
        try
        {
            for (int peer = 0; peer < links.Length; peer++)
                if (opening[peer] is { } link) links[peer] = await link;
            return links;
        }
        catch
        {
            foreach (var task in opening.Where(t => t is not null))
                _ = task.ContinueWith(t => t.Result.Dispose(), TaskContinuationOptions.OnlyOnRanToCompletion);
            throw;
        }
    }

    private async Task<IBlockLink> ConnectAsync(LinkKey key, string endpoint, CancellationToken cancel)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream? stream = null;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            timeout.CancelAfter(_options.SplitLinkTimeout);
            await socket.ConnectAsync(IPEndPoint.Parse(endpoint), timeout.Token);
            stream = await _security.ConnectAsync(socket, timeout.Token);
            await stream.WriteAsync(LinkHello.Encode(key), timeout.Token);
            // The peer's worker has taken the link up: it is ready to send its blocks.
            var answer = new byte[1];
            if (await stream.ReadAsync(answer, timeout.Token) == 0) throw new EndOfStreamException("the connection closed");
            if (answer[0] != LinkHello.TakenUp) throw new InvalidDataException($"the peer answered {answer[0]} instead of {LinkHello.TakenUp}");
            return new TcpLink(key.To, new LinkConnection(socket, stream), key.Job, _options.LinkReadTimeout);
        }
        catch (Exception e)
        {
            if (stream is null) socket.Dispose();
            else await stream.DisposeAsync();
            throw new IOException($"Job {key.Job}: worker {key.From} could not link to worker {key.To} at {endpoint} within {_options.SplitLinkTimeout.TotalSeconds:F0} s (Trainer:SplitLinkTimeout): {e.Message}", e);
        }
    }

    private async Task<IBlockLink> AcceptAsync(LinkKey key, CancellationToken cancel)
    {
        LinkConnection connection;
        try
        {
            connection = await Listener.ClaimAsync(key, _options.SplitLinkTimeout, cancel);
        }
        catch (TimeoutException e)
        {
            throw new IOException($"Job {key.Job}: worker {key.From} did not link to worker {key.To} within {_options.SplitLinkTimeout.TotalSeconds:F0} s (Trainer:SplitLinkTimeout).", e);
        }
        try
        {
            await connection.Stream.WriteAsync(new[] { LinkHello.TakenUp }, cancel);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            connection.Dispose();
            throw new IOException($"Job {key.Job}: worker {key.From}'s link to worker {key.To} closed before it was taken up: {e.Message}", e);
        }
        return new TcpLink(key.From, connection, key.Job, _options.LinkReadTimeout);
    }

    /// <summary>Worker <c>outKey.From</c>'s link to worker <c>outKey.To</c> of the same silo, once that worker has taken up its end too.</summary>
    private async Task<IBlockLink> LinkInProcessAsync(LinkKey outKey, LinkKey inKey, CancellationToken cancel)
    {
        var peer = new LocalPeer(this, outKey, inKey, _options.LinkReadTimeout);
        try
        {
            // A peer that went away (Release) before this link existed would never take it up; one that goes after closes it.
            if (_released.ContainsKey((outKey.Job, outKey.To))) throw new ObjectDisposedException($"worker {outKey.To}'s links", "it takes no links (it went away)");
            await peer.TakenUp.WaitAsync(_options.SplitLinkTimeout, cancel);
            return peer;
        }
        catch (Exception e)
        {
            peer.Dispose();
            throw new IOException($"Job {outKey.Job}: worker {outKey.To} did not link to worker {outKey.From} (same silo) within {_options.SplitLinkTimeout.TotalSeconds:F0} s (Trainer:SplitLinkTimeout).", e);
        }
    }

    internal LocalLink Local(LinkKey key) => _local.GetOrAdd(key, _ => new LocalLink());

    /// <summary>Closes an in-process link and lets it go (its other end fails, as over TCP).</summary>
    internal void Close(LinkKey key, LocalLink link)
    {
        link.Dispose();
        _local.TryRemove(new KeyValuePair<LinkKey, LocalLink>(key, link));
    }

    /// <summary>How many connections to workers of <paramref name="job"/> wait for their worker to take them up.</summary>
    internal int Parked(string job) => CurrentListener?.Parked(job) ?? 0;

    /// <summary>Connections this silo's listener holds that no worker has claimed (waiting for their hello or their worker).</summary>
    internal int Unclaimed => CurrentListener?.Unclaimed ?? 0;

    private LinkListener? CurrentListener
    {
        get { lock (_gate) return _listener; }
    }

    /// <summary>
    /// Worker <paramref name="rank"/> of <paramref name="job"/> is going away: its links still parked
    /// are closed, and no more are taken for it.
    /// </summary>
    internal void Release(string job, int rank)
    {
        var now = DateTime.UtcNow;
        foreach (var (gone, since) in _released)
            if (now - since > _options.SplitLinkTimeout) _released.TryRemove(new(gone, since));
        if (_workers.TryRemove((job, rank), out _)) _released[(job, rank)] = now;
        Sweep(job, long.MaxValue, rank);
    }

    /// <summary>Closes what older runs of <paramref name="job"/> left for worker <paramref name="rank"/>: links nobody will claim.</summary>
    private void Sweep(string job, long generation, int rank)
    {
        CurrentListener?.Close(job, generation, rank);
        foreach (var (key, link) in _local)
            if (key.Job == job && (key.To == rank || key.From == rank) && key.Generation < generation && _local.TryRemove(new(key, link)))
                link.Dispose();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopping.IsCancellationRequested) return;
            _stopping.Cancel();
            _listener?.Dispose();
        }
        foreach (var link in _local.Values) link.Dispose();
    }

    internal readonly record struct LinkKey(string Job, long Generation, int From, int To);

    /// <summary>One direction between two workers of one silo: a short queue of copied blocks.</summary>
    internal sealed class LocalLink : IDisposable
    {
        // A sender is at most one step ahead of its receiver (it needs the receiver's block of a step to compute the next), so two frames suffice.
        // Frames are rented (the receiver returns them), so steady-state steps allocate nothing; a shared frame is the sender's own array.
        private readonly BlockingCollection<(int Step, byte[] Values, int Length, bool Shared)> _frames = new(boundedCapacity: 2);
        private readonly CancellationTokenSource _closed = new();
        private readonly TaskCompletionSource _receiving = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completes once the receiving worker has taken this direction up (<see cref="TakeUp"/>).</summary>
        public Task TakenUp => _receiving.Task;

        public void TakeUp() => _receiving.TrySetResult();

        public void Send(int step, ReadOnlySpan<byte> block, TimeSpan timeout)
        {
            var values = ArrayPool<byte>.Shared.Rent(block.Length);
            block.CopyTo(values);
            Add((step, values, block.Length, false), timeout);
        }

        /// <summary>Hands <paramref name="values"/> itself to the receiver (<see cref="IBlockLink.SendShared"/>): large blocks of one process are not copied twice.</summary>
        public void SendShared(int step, byte[] values, TimeSpan timeout) => Add((step, values, values.Length, true), timeout);

        private void Add((int Step, byte[] Values, int Length, bool Shared) frame, TimeSpan timeout)
        {
            if (!_frames.TryAdd(frame, Milliseconds(timeout), _closed.Token))
                throw new TimeoutException($"it took no block for {timeout.TotalSeconds:F0} s (Trainer:LinkReadTimeout): the worker is hung");
        }

        /// <summary>The next frame, copied into <paramref name="into"/>; answers its step and length.</summary>
        public (int Step, int Length) Receive(Span<byte> into, TimeSpan timeout)
        {
            if (!_frames.TryTake(out var frame, Milliseconds(timeout), _closed.Token))
                throw new TimeoutException($"nothing arrived within {timeout.TotalSeconds:F0} s (Trainer:LinkReadTimeout): the worker is hung");
            if (frame.Length == into.Length) frame.Values.AsSpan(0, frame.Length).CopyTo(into);
            if (!frame.Shared) ArrayPool<byte>.Shared.Return(frame.Values);
            return (frame.Step, frame.Length);
        }

        /// <summary>
        /// The next frame, after <paramref name="check"/> has seen its step and length: a shared frame is answered
        /// as it is (the sender's array); any other is copied into the array <paramref name="bufferFor"/> gives for its length, which is answered.
        /// </summary>
        public byte[] Receive(Action<int, int> check, Func<int, byte[]> bufferFor, TimeSpan timeout)
        {
            if (!_frames.TryTake(out var frame, Milliseconds(timeout), _closed.Token))
                throw new TimeoutException($"nothing arrived within {timeout.TotalSeconds:F0} s (Trainer:LinkReadTimeout): the worker is hung");
            try
            {
                check(frame.Step, frame.Length);
                if (frame.Shared) return frame.Values;
                var into = bufferFor(frame.Length);
                frame.Values.AsSpan(0, frame.Length).CopyTo(into);
                return into;
            }
            finally
            {
                if (!frame.Shared) ArrayPool<byte>.Shared.Return(frame.Values);
            }
        }

        public void Dispose()
        {
            _closed.Cancel();
            // A worker still waiting for its peer to take this link up stops waiting.
            _receiving.TrySetCanceled();
        }

        private static int Milliseconds(TimeSpan timeout) => timeout == Timeout.InfiniteTimeSpan ? Timeout.Infinite : (int)Math.Clamp(timeout.TotalMilliseconds, 0, int.MaxValue);
    }
}
