using Trainer.Abstractions;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Reading a tensor offered on another silo without an array of its own each time: into a buffer the
/// reader keeps (a worker's cache, a shard's gradient buffer), or chunk by chunk into place (the
/// parameter server's parameters and the model state it puts together). Either way every byte of the
/// tensor arrives exactly once, and a missing one fails the read.
/// </summary>
public class TensorTransferReadTests
{
    private const int Chunk = 1024;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static readonly byte[] Tensor = [.. Enumerable.Range(0, 10 * Chunk + 24).Select(i => (byte)(i * 7))];

    [Fact]
    public async Task ATensorFromAnotherSilo_IsReadIntoTheReadersBuffer_WhenItHasItsSize()
    {
        var buffer = new TensorPayload(new byte[Tensor.Length]);

        var read = await Offered(Tensor).ReceiveAsync(Chunk, here: null, into: buffer, Token);

        Assert.Same(buffer, read);
        Assert.Equal(Tensor, buffer.Bytes);
    }

    [Fact]
    public async Task ABufferOfAnotherSize_IsLeftAlone_AndTheTensorGetsAnArrayOfItsOwn()
    {
        var buffer = new TensorPayload(new byte[Tensor.Length - 8]);

        var read = await Offered(Tensor).ReceiveAsync(Chunk, here: null, into: buffer, Token);

        Assert.NotSame(buffer, read);
        Assert.Equal(Tensor, read.Bytes);
        Assert.All(buffer.Bytes, b => Assert.Equal(0, b));
    }

    [Fact]
    public async Task ChunkByChunk_EveryByteArrivesOnce_AtItsOffset()
    {
        var put = new byte[Tensor.Length];
        var arrivals = new int[Tensor.Length];

        await Offered(Tensor).ReceiveChunksAsync(Chunk, here: null, sink: chunk =>
        {
            Assert.Equal(Tensor.Length, chunk.TotalBytes);
            Assert.InRange(chunk.Bytes.Length, 1, Chunk);
            chunk.Bytes.CopyTo(put, chunk.Offset);
            for (long i = chunk.Offset; i < chunk.Offset + chunk.Bytes.Length; i++) arrivals[i]++;
        }, Token);

        Assert.Equal(Tensor, put);
        Assert.All(arrivals, n => Assert.Equal(1, n));
    }

    [Fact]
    public async Task ChunkByChunk_AMissingChunk_FailsTheRead()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => Offered(Tensor, dropChunkAt: 3 * Chunk).ReceiveChunksAsync(Chunk, here: null, _ => { }, Token));

        Assert.Contains("arrived where bytes from", error.Message);
    }

    /// <summary>A transfer by reference to a holder that serves <paramref name="tensor"/> as an offer on another silo does.</summary>
    private static TensorTransfer Offered(byte[] tensor, long dropChunkAt = -1) =>
        new(null, new Holder(new TensorPayload(tensor), dropChunkAt), Offer: 7, tensor.Length);

    private sealed class Holder(TensorPayload payload, long dropChunkAt) : ITensorSource
    {
        public async IAsyncEnumerable<TensorChunk> ReadOfferAsync(long offer, int maxChunkBytes, long from, long to)
        {
            Assert.Equal(7, offer);
            foreach (var chunk in TensorChunk.Split(payload, maxChunkBytes, from, to))
                if (chunk.Offset != dropChunkAt) yield return chunk;
            await Task.CompletedTask;
        }
    }
}
