using System.Buffers.Binary;
using System.Net.Sockets;
using Trainer.Core.Memory;

namespace Trainer.Grains;

/// <summary>
/// A worker's link to one other worker of its split job: blocks go out with <see cref="Send"/>
/// and come in, in step order, with <see cref="Receive"/>. Used by one thread (the worker's
/// <see cref="LinkRunner"/>); <see cref="IDisposable.Dispose"/> may come from any thread and makes
/// a blocked call fail.
/// </summary>
internal interface IBlockLink : IDisposable
{
    /// <summary>The other worker's rank.</summary>
    int Peer { get; }

    /// <summary>Sends this worker's block of <paramref name="step"/>. It may return before the peer has it; <paramref name="block"/> may change right after.</summary>
    void Send(int step, ReadOnlySpan<byte> block);

    /// <summary>
    /// Sends <paramref name="values"/> (all of it) as this worker's block of <paramref name="step"/>. A peer of
    /// this process receives this very array, not a copy, through <see cref="Receive(int, Func{int, byte[]})"/>,
    /// so the sender must leave it unchanged until the peer's answer shows it is done with it; to a peer of
    /// another silo it is written from this array as well, without a copy (the same rule covers it).
    /// </summary>
    void SendShared(int step, byte[] values);

    /// <summary>Waits for the peer's block of <paramref name="step"/> and copies it into <paramref name="into"/> (exactly its length).</summary>
    void Receive(int step, Span<byte> into);

    /// <summary>
    /// Waits for the peer's next frame, which must be of <paramref name="step"/>, whatever its length, and
    /// reads it into the array <paramref name="bufferFor"/> gives for that length (exactly that long); answers that array,
    /// or, for a frame a peer of this process sent with <see cref="SendShared"/>, the sender's own array.
    /// </summary>
    byte[] Receive(int step, Func<int, byte[]> bufferFor);

    /// <summary>
    /// From now on a receive waits as long as it takes: the side of a run that waits for requests
    /// (the side that sends them notices a lost or hung peer, and closes the link).
    /// </summary>
    void WaitIndefinitely();
}

/// <summary>What every link checks of an incoming block: it is the step and the size the reader is due.</summary>
internal static class BlockFrame
{
    /// <param name="bytes">The length due; negative: any length.</param>
    public static void Check(int peer, int sentStep, int sentBytes, int step, int bytes)
    {
        if (sentStep != step || sentBytes < 0 || bytes >= 0 && sentBytes != bytes)
            throw new InvalidDataException($"Worker {peer} sent step {sentStep}'s block ({sentBytes} bytes) where step {step}'s ({(bytes >= 0 ? $"{bytes} bytes" : "any length")}) was due.");
    }
}

/// <summary>
/// Two workers of one silo: a <see cref="WorkerLinks.LocalLink"/> each way. A send or receive
/// that waits longer than <paramref name="timeout"/> (<see cref="TrainerOptions.LinkReadTimeout"/>) fails: the peer is hung.
/// </summary>
internal sealed class LocalPeer : IBlockLink
{
    private readonly WorkerLinks _links;
    private readonly WorkerLinks.LinkKey _outKey, _inKey;
    private readonly WorkerLinks.LocalLink _outgoing, _incoming;
    private readonly TimeSpan _timeout;
    private TimeSpan _receiveTimeout;

    /// <summary>Takes up this worker's end: the peer's link to it (<paramref name="inKey"/>).</summary>
    public LocalPeer(WorkerLinks links, WorkerLinks.LinkKey outKey, WorkerLinks.LinkKey inKey, TimeSpan timeout)
    {
        (_links, _outKey, _inKey, _timeout, _receiveTimeout) = (links, outKey, inKey, timeout, timeout);
        (_outgoing, _incoming) = (links.Local(outKey), links.Local(inKey));
        _incoming.TakeUp();
    }

    public int Peer => _outKey.To;

    /// <summary>Completes once the peer has taken up its end.</summary>
    public Task TakenUp => _outgoing.TakenUp;

    public void Send(int step, ReadOnlySpan<byte> block)
    {
        try
        {
            _outgoing.Send(step, block, _timeout);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            throw Closed(e);
        }
    }

    public void SendShared(int step, byte[] values)
    {
        try
        {
            _outgoing.SendShared(step, values, _timeout);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            throw Closed(e);
        }
    }

    public void Receive(int step, Span<byte> into)
    {
        (int Step, int Length) frame;
        try
        {
            frame = _incoming.Receive(into, _receiveTimeout);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            throw Closed(e);
        }
        BlockFrame.Check(Peer, frame.Step, frame.Length, step, into.Length);
    }

    public byte[] Receive(int step, Func<int, byte[]> bufferFor)
    {
        try
        {
            return _incoming.Receive((sent, length) => BlockFrame.Check(Peer, sent, length, step, -1), bufferFor, _receiveTimeout);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            throw Closed(e);
        }
    }

    public void WaitIndefinitely() => _receiveTimeout = Timeout.InfiniteTimeSpan;

    private IOException Closed(Exception e) =>
        new($"The link to worker {Peer} (same silo) {(e is TimeoutException ? $"failed: {e.Message}" : "closed: the worker stopped")}.", e);

    public void Dispose()
    {
        _links.Close(_outKey, _outgoing);
        _links.Close(_inKey, _incoming);
    }
}

/// <summary>
/// Two workers of different silos: one TCP connection (TLS in a TLS cluster), frames of (step, length, block). A read that
/// sees nothing, or a send whose previous block the peer does not take, for <paramref name="timeout"/>
/// (<see cref="TrainerOptions.LinkReadTimeout"/>) fails: the peer is hung or cut off.
/// </summary>
internal sealed class TcpLink : IBlockLink
{
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly string _job;
    private readonly TimeSpan _timeout;
    private readonly byte[] _header = new byte[8];
    private readonly byte[] _sendHeader = new byte[8];
    private byte[] _frame = [];
    private Task _sending = Task.CompletedTask;

    public TcpLink(int peer, LinkConnection connection, string job, TimeSpan timeout)
    {
        (Peer, _socket, _stream, _job, _timeout) = (peer, connection.Socket, connection.Stream, job, timeout);
        // A TLS stream's reads block in the socket's reads too (their timeout reaches it as the same IOException), so this bounds them as well.
        _socket.ReceiveTimeout = (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);
    }

    public int Peer { get; }

    public void Send(int step, ReadOnlySpan<byte> block) => Write(step, block, shared: null);

    /// <remarks>
    /// Not copied: the caller leaves <paramref name="values"/> unchanged until the peer answers, and the peer can
    /// answer only once it has read every byte, so after this write has handed the last of them to the socket.
    /// A copy of a model's parameters (every step, to a worker of another silo) was a pass over them on the step's critical path.
    /// </remarks>
    public void SendShared(int step, byte[] values) => Write(step, values, shared: values);

    private void Write(int step, ReadOnlySpan<byte> block, byte[]? shared)
    {
        try
        {
            // One write in flight: the peer reads a frame per step, so waiting here never waits on this worker's own reads.
            _sending.WaitAsync(_timeout).GetAwaiter().GetResult();
            if (shared is not null)
            {
                BinaryPrimitives.WriteInt32LittleEndian(_sendHeader, step);
                BinaryPrimitives.WriteInt32LittleEndian(_sendHeader.AsSpan(4), shared.Length);
                _sending = WriteAsync(_sendHeader, shared);
                return;
            }
            // The buffer only grows: a step's frames alternate between a small header and a large block, and a
            // new large array for every block cost a page fault per 4 KB written (fresh memory each time).
            if (_frame.Length < block.Length + 8) _frame = LargeArrays.New<byte>(block.Length + 8);
            BinaryPrimitives.WriteInt32LittleEndian(_frame, step);
            BinaryPrimitives.WriteInt32LittleEndian(_frame.AsSpan(4), block.Length);
            block.CopyTo(_frame.AsSpan(8));
            // Large blocks go out while this worker reads the peer's: both sending synchronously could fill both sockets' buffers and wait forever.
            _sending = _stream.WriteAsync(_frame.AsMemory(0, block.Length + 8)).AsTask();
        }
        catch (TimeoutException e)
        {
            throw Closed(e, $"the peer took no block for {_timeout.TotalSeconds:F0} s (Trainer:LinkReadTimeout): it is hung or cut off");
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            throw Closed(e, e.Message);
        }
    }

    private async Task WriteAsync(byte[] header, byte[] values)
    {
        await _stream.WriteAsync(header);
        await _stream.WriteAsync(values);
    }

    public void Receive(int step, Span<byte> into)
    {
        try
        {
            ReadHeader(step, into.Length);
            _stream.ReadExactly(into);
        }
        catch (Exception e) when (ReadFailure(e) is { } failure)
        {
            throw failure;
        }
    }

    public byte[] Receive(int step, Func<int, byte[]> bufferFor)
    {
        try
        {
            var into = bufferFor(ReadHeader(step, -1));
            _stream.ReadExactly(into);
            return into;
        }
        catch (Exception e) when (ReadFailure(e) is { } failure)
        {
            throw failure;
        }
    }

    /// <summary>Reads the next frame's header, checks it is <paramref name="step"/>'s (of <paramref name="bytes"/>; negative: any length) and answers its length.</summary>
    private int ReadHeader(int step, int bytes)
    {
        _stream.ReadExactly(_header);
        int sent = BinaryPrimitives.ReadInt32LittleEndian(_header), length = BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(4));
        BlockFrame.Check(Peer, sent, length, step, bytes);
        return length;
    }

    // NOTE: ReceiveTimeout 0 is .NET's "infinite".
    public void WaitIndefinitely() => _socket.ReceiveTimeout = 0;

    /// <summary>What a failed read means for the link: hung or cut off (timed out), or broken; null for anything else (not the link's).</summary>
    private IOException? ReadFailure(Exception e) => e switch
    {
        IOException { InnerException: SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock } } =>
            Closed(e, $"nothing arrived for {_timeout.TotalSeconds:F0} s (Trainer:LinkReadTimeout): the peer is hung or cut off"),
        IOException or SocketException or ObjectDisposedException => Closed(e, e.Message),
        _ => null,
    };

    private IOException Closed(Exception e, string why) =>
        new($"Job {_job}: the link to worker {Peer} at {Describe(_socket)} failed: {why}", e);

    private static string Describe(Socket socket)
    {
        try { return socket.RemoteEndPoint?.ToString() ?? "?"; }
        catch (ObjectDisposedException) { return "(closed)"; }
    }

    public void Dispose() => _stream.Dispose();
}
