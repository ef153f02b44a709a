using System.Buffers.Binary;
using System.Net.Sockets;

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

    /// <summary>Waits for the peer's block of <paramref name="step"/> and copies it into <paramref name="into"/> (exactly its length).</summary>
    void Receive(int step, Span<byte> into);
}

/// <summary>What every link checks of an incoming block: it is the step and the size the reader is due.</summary>
internal static class BlockFrame
{
    public static void Check(int peer, int sentStep, int sentBytes, int step, int bytes)
    {
        if (sentStep != step || sentBytes != bytes)
            throw new InvalidDataException($"Worker {peer} sent step {sentStep}'s block ({sentBytes} bytes) where step {step}'s ({bytes} bytes) was due.");
    }
}

/// <summary>Two workers of one silo: a <see cref="WorkerLinks.LocalLink"/> each way.</summary>
internal sealed class LocalPeer(WorkerLinks links, WorkerLinks.LinkKey outKey, WorkerLinks.LinkKey inKey, TimeSpan timeout) : IBlockLink
{
    private readonly WorkerLinks.LocalLink _outgoing = links.Local(outKey), _incoming = links.Local(inKey);

    public int Peer => outKey.To;

    public void Send(int step, ReadOnlySpan<byte> block)
    {
        try
        {
            _outgoing.Send(step, block, timeout);
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
            frame = _incoming.Receive(into, timeout);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            throw Closed(e);
        }
        BlockFrame.Check(Peer, frame.Step, frame.Length, step, into.Length);
    }

    private IOException Closed(Exception e) =>
        new($"The link to worker {Peer} (same silo) closed: {(e is TimeoutException ? e.Message : "the worker stopped")}.", e);

    public void Dispose()
    {
        links.Close(outKey, _outgoing);
        links.Close(inKey, _incoming);
    }
}

/// <summary>Two workers of different silos: one TCP connection, frames of (step, length, block).</summary>
internal sealed class TcpLink : IBlockLink
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly string _job;
    private readonly byte[] _header = new byte[8];
    private byte[] _frame = [];
    private Task _sending = Task.CompletedTask;

    public TcpLink(int peer, Socket socket, string job, TimeSpan timeout)
    {
        (Peer, _socket, _job) = (peer, socket, job);
        _socket.ReceiveTimeout = (int)Math.Min(int.MaxValue, timeout.TotalMilliseconds);
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public int Peer { get; }

    public void Send(int step, ReadOnlySpan<byte> block)
    {
        try
        {
            // One write in flight: the peer reads a frame per step, so waiting here never waits on this worker's own reads.
            _sending.GetAwaiter().GetResult();
            if (_frame.Length != block.Length + 8) _frame = new byte[block.Length + 8];
            BinaryPrimitives.WriteInt32LittleEndian(_frame, step);
            BinaryPrimitives.WriteInt32LittleEndian(_frame.AsSpan(4), block.Length);
            block.CopyTo(_frame.AsSpan(8));
            // Large blocks go out while this worker reads the peer's: both sending synchronously could fill both sockets' buffers and wait forever.
            _sending = _stream.WriteAsync(_frame).AsTask();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            throw Closed(e);
        }
    }

    public void Receive(int step, Span<byte> into)
    {
        try
        {
            _stream.ReadExactly(_header);
            int sent = BinaryPrimitives.ReadInt32LittleEndian(_header), length = BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(4));
            BlockFrame.Check(Peer, sent, length, step, into.Length);
            _stream.ReadExactly(into);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or EndOfStreamException)
        {
            throw Closed(e);
        }
    }

    private IOException Closed(Exception e) =>
        new($"Job {_job}: the link to worker {Peer} at {Describe(_socket)} failed: {e.Message}", e);

    private static string Describe(Socket socket)
    {
        try { return socket.RemoteEndPoint?.ToString() ?? "?"; }
        catch (ObjectDisposedException) { return "(closed)"; }
    }

    public void Dispose() => _stream.Dispose();
}
