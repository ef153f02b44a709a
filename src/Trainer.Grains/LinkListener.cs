using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using LinkKey = Trainer.Grains.WorkerLinks.LinkKey;

namespace Trainer.Grains;

/// <summary>
/// A silo's TCP listener for its workers' links from other silos: it accepts a connection, reads
/// its hello (which link it is) and holds it until the link's worker claims it. Anyone who reaches
/// the port can connect, so what it holds is bounded (docs/operations.md, "The link port"):
/// <list type="bullet">
/// <item>in a TLS cluster a connection that does not authenticate with the cluster's certificate
/// (<see cref="LinkSecurity"/>) is closed before its hello is read;</item>
/// <item>a hello for a worker that has no run on this silo is refused at once;</item>
/// <item>at most <see cref="TrainerOptions.MaxUnclaimedLinks"/> connections wait for their hello or
/// their worker; the oldest is dropped to make room;</item>
/// <item>a connection no worker claimed within <see cref="TrainerOptions.SplitLinkTimeout"/> is
/// closed: the worker that opened it has given up by then;</item>
/// <item>refusals and drops are logged at most once per <see cref="WarningPeriod"/>, with a count;</item>
/// <item>a failing accept (e.g. out of file handles) backs off up to a second instead of spinning.</item>
/// </list>
/// </summary>
internal sealed class LinkListener : IDisposable
{
    public static readonly TimeSpan WarningPeriod = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan MaxAcceptBackoff = TimeSpan.FromSeconds(1);
    private readonly TcpListener _listener;
    private readonly Func<LinkKey, bool> _expected;
    private readonly int _maxUnclaimed;
    private readonly TimeSpan _expiry;
    private readonly LinkSecurity _security;
    private readonly ThrottledWarning _refused, _unauthenticated, _dropped, _acceptFailed;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    // Connections no worker has claimed, oldest first: waiting for their hello (no key yet) or parked under it.
    private readonly LinkedList<Connection> _unclaimed = new();
    private readonly Dictionary<LinkKey, LinkedListNode<Connection>> _parked = [];
    // Workers waiting for their link's connection.
    private readonly Dictionary<LinkKey, TaskCompletionSource<LinkConnection>> _claims = [];

    private sealed class Connection(Socket socket, EndPoint? remote)
    {
        public Socket Socket => socket;
        public EndPoint? Remote => remote;
        public DateTime Since { get; } = DateTime.UtcNow;
        public LinkKey? Key { get; set; }
        // Closing the stream closes the socket; until the handshake is done there is only the socket.
        public Stream? Stream { get; set; }
        public LinkConnection Taken => new(socket, Stream!);
        public void Close() => (Stream as IDisposable ?? socket).Dispose();
    }

    /// <param name="expected">Whether a worker of this silo may take up a link under this key (it has a run here).</param>
    public LinkListener(IPEndPoint endpoint, Func<LinkKey, bool> expected, LinkSecurity security, TrainerOptions options, ILogger logger)
    {
        (_expected, _security, _maxUnclaimed, _expiry) = (expected, security, options.MaxUnclaimedLinks, options.SplitLinkTimeout);
        _refused = new(logger, "Worker links: a connection was refused", WarningPeriod);
        _unauthenticated = new(logger, "Worker links: a connection failed authentication and was closed", WarningPeriod);
        _dropped = new(logger, "Worker links: an unclaimed connection was closed", WarningPeriod);
        _acceptFailed = new(logger, "Worker links: accepting a connection failed", WarningPeriod);
        _listener = new TcpListener(endpoint);
        _listener.Start();
        Endpoint = (IPEndPoint)_listener.LocalEndpoint;
        // NOTE: on the thread pool, not on the calling worker grain's scheduler: an async loop
        // started inside a grain resumes on that activation's scheduler for ever, which kept the
        // first worker (and its replica: 1.6 GB for a 50M model) reachable after it deactivated.
        _ = Task.Run(AcceptLoopAsync);
        _ = Task.Run(ExpireLoopAsync);
    }

    public IPEndPoint Endpoint { get; }

    /// <summary>Connections accepted that no worker has claimed yet (waiting for their hello or their worker).</summary>
    public int Unclaimed
    {
        get { lock (_gate) return _unclaimed.Count; }
    }

    /// <summary>How many connections to workers of <paramref name="job"/> wait for their worker to claim them.</summary>
    public int Parked(string job)
    {
        lock (_gate) return _parked.Keys.Count(k => k.Job == job);
    }

    /// <summary>The connection of link <paramref name="key"/>, once its hello has arrived (it may have already).</summary>
    public async Task<LinkConnection> ClaimAsync(LinkKey key, TimeSpan timeout, CancellationToken cancel)
    {
        TaskCompletionSource<LinkConnection> claim;
        lock (_gate)
        {
            if (_parked.Remove(key, out var parked))
            {
                _unclaimed.Remove(parked);
                return parked.Value.Taken;
            }
            _claims[key] = claim = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        LinkConnection? taken = null;
        try
        {
            return (taken = await claim.Task.WaitAsync(timeout, cancel)).Value;
        }
        finally
        {
            lock (_gate)
            {
                if (_claims.TryGetValue(key, out var mine) && mine == claim) _claims.Remove(key);
            }
            // Handed over (under the lock) just as this claim gave up: nobody else will take it.
            if (taken is null && claim.Task.IsCompletedSuccessfully) claim.Task.Result.Dispose();
        }
    }

    /// <summary>Closes the connections parked for worker <paramref name="rank"/> of <paramref name="job"/> by runs older than <paramref name="generation"/>.</summary>
    public void Close(string job, long generation, int rank)
    {
        List<Connection> closed = [];
        lock (_gate)
        {
            foreach (var node in _parked.Where(p => p.Key.Job == job && p.Key.To == rank && p.Key.Generation < generation).Select(p => p.Value).ToList())
                closed.Add(Remove(node));
        }
        foreach (var connection in closed) connection.Close();
    }

    private async Task AcceptLoopAsync()
    {
        var backoff = TimeSpan.Zero;
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                var socket = await _listener.AcceptSocketAsync(_stopping.Token);
                backoff = TimeSpan.Zero;
                Admit(socket);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                // Out of file handles, say: accepting again at once would fail again, thousands of times a second.
                backoff = TimeSpan.FromTicks(Math.Clamp(backoff.Ticks * 2, TimeSpan.FromMilliseconds(10).Ticks, MaxAcceptBackoff.Ticks));
                _acceptFailed.Warn($"{e.Message} (SocketError.{e.SocketErrorCode}); accepting again in {backoff.TotalMilliseconds:F0} ms", e);
                await Task.Delay(backoff);
            }
        }
    }

    /// <summary>Holds a new connection until its hello arrives, dropping the oldest unclaimed one if that makes too many.</summary>
    private void Admit(Socket socket)
    {
        EndPoint? remote;
        try { remote = socket.RemoteEndPoint; }
        catch (SocketException) { remote = null; }
        List<Connection> dropped = [];
        LinkedListNode<Connection> node;
        lock (_gate)
        {
            node = _unclaimed.AddLast(new Connection(socket, remote));
            while (_unclaimed.Count > _maxUnclaimed) dropped.Add(Remove(_unclaimed.First!));
        }
        foreach (var old in dropped) old.Close();
        if (dropped.Count > 0)
            _dropped.Warn($"more than {_maxUnclaimed} connections waited for their hello or their worker (Trainer:MaxUnclaimedLinks); the oldest was closed");
        _ = ReceiveHelloAsync(node);
    }

    /// <summary>
    /// Authenticates the connection (in a TLS cluster) and reads its hello, then hands it to its
    /// worker, parks it for the worker, or refuses it.
    /// </summary>
    private async Task ReceiveHelloAsync(LinkedListNode<Connection> node)
    {
        var (connection, remote) = (node.Value, node.Value.Remote);
        string refusal;
        try
        {
            connection.Socket.NoDelay = true;
            var stream = await AuthenticateAsync(node);
            if (stream is null) return;   // closed meanwhile, or refused as unauthenticated
            var key = await LinkHello.ReadAsync(stream, _stopping.Token);
            lock (_gate)
            {
                if (node.List is null) return;   // dropped or expired meanwhile: already closed
                if (!_expected(key)) refusal = $"job {key.Job} has no worker {key.To} with a run on this silo";
                else if (_parked.ContainsKey(key)) refusal = $"job {key.Job} already has a link from worker {key.From} to worker {key.To} in run {key.Generation}";
                else if (_claims.Remove(key, out var claim))
                {
                    _unclaimed.Remove(node);
                    claim.SetResult(connection.Taken);
                    return;
                }
                else
                {
                    node.Value.Key = key;
                    _parked[key] = node;
                    return;
                }
                _unclaimed.Remove(node);
            }
        }
        catch (Exception e) when (!_stopping.IsCancellationRequested)
        {
            lock (_gate)
            {
                if (node.List is null) return;   // dropped or expired: its closing is what failed the read
                _unclaimed.Remove(node);
            }
            refusal = e.Message;
        }
        catch (Exception)
        {
            return;   // the silo is stopping; Dispose closes what is left
        }
        _refused.Warn($"from {remote?.ToString() ?? "?"}: {refusal}");
        connection.Close();
    }

    /// <summary>
    /// The connection's stream once it is authenticated (<see cref="LinkSecurity"/>); null when it
    /// failed authentication (it is then closed and logged) or was closed meanwhile.
    /// </summary>
    private async Task<Stream?> AuthenticateAsync(LinkedListNode<Connection> node)
    {
        var connection = node.Value;
        Stream stream;
        try
        {
            stream = await _security.AcceptAsync(connection.Socket, _stopping.Token);
        }
        catch (System.Security.Authentication.AuthenticationException e) when (!_stopping.IsCancellationRequested)
        {
            lock (_gate)
            {
                if (node.List is null) return null;   // dropped or expired: its closing is what failed the handshake
                _unclaimed.Remove(node);
            }
            connection.Close();
            _unauthenticated.Warn($"from {connection.Remote?.ToString() ?? "?"}: {e.Message}");
            return null;
        }
        lock (_gate)
        {
            if (node.List is not null)
            {
                connection.Stream = stream;
                return stream;
            }
        }
        stream.Dispose();   // dropped or expired during the handshake
        return null;
    }

    /// <summary>Closes connections that waited longer than a worker waits to link up: whoever opened them has given up.</summary>
    private async Task ExpireLoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromTicks(Math.Clamp(_expiry.Ticks / 4, TimeSpan.FromMilliseconds(100).Ticks, TimeSpan.FromSeconds(5).Ticks)));
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token))
            {
                List<Connection> expired = [];
                lock (_gate)
                {
                    var before = DateTime.UtcNow - _expiry;
                    while (_unclaimed.First is { } oldest && oldest.Value.Since < before) expired.Add(Remove(oldest));
                }
                foreach (var connection in expired) connection.Close();
                if (expired.Count > 0)
                    _dropped.Warn($"{expired.Count} connection(s) waited {_expiry.TotalSeconds:F0} s (Trainer:SplitLinkTimeout) for their hello or their worker");
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    // Under _gate.
    private Connection Remove(LinkedListNode<Connection> node)
    {
        _unclaimed.Remove(node);
        if (node.Value.Key is { } key) _parked.Remove(key);
        return node.Value;
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _listener.Stop();
        List<Connection> open;
        lock (_gate)
        {
            open = [.. _unclaimed];
            _unclaimed.Clear();
            _parked.Clear();
        }
        foreach (var connection in open) connection.Close();
    }
}

/// <summary>A link's connection once its hello has arrived: the socket (for its timeouts and address) and the stream its blocks travel on (TLS in a TLS cluster).</summary>
internal readonly record struct LinkConnection(Socket Socket, Stream Stream) : IDisposable
{
    public void Dispose() => Stream.Dispose();
}
