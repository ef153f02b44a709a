using System.Net;
using System.Net.Sockets;

namespace Trainer.Process.Tests;

/// <summary>What a silo process holds (file handles, resident memory), and raw connections to its ports, for the flood tests.</summary>
public static class SiloProbe
{
    /// <summary>The most file handles and resident megabytes seen in <paramref name="pid"/>, sampled every 50 ms until cancelled.</summary>
    public static async Task<(int Handles, long RssMb)> SamplePeakAsync(int pid, CancellationToken stop)
    {
        int handles = 0;
        long rss = 0;
        while (!stop.IsCancellationRequested)
        {
            handles = Math.Max(handles, OpenFiles(pid));
            rss = Math.Max(rss, ResidentMb(pid));
            try { await Task.Delay(50, stop); }
            catch (OperationCanceledException) { }
        }
        return (handles, rss);
    }

    public static int OpenFiles(int pid) => Directory.GetFiles($"/proc/{pid}/fd").Length;

    public static long ResidentMb(int pid) =>
        File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024).FirstOrDefault();

    public static async Task<Socket> ConnectAsync(IPEndPoint port, CancellationToken cancel)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(port, cancel);
        return socket;
    }

    public static byte[] RandomBytes(int length)
    {
        var bytes = new byte[length];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }
}
