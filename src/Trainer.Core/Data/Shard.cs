namespace Trainer.Core.Data;

/// <summary>A contiguous range of samples [Start, Start + Count) owned by one worker rank.</summary>
public readonly record struct Shard(int Rank, int Start, int Count)
{
    public int End => Start + Count;

    /// <summary>
    /// Splits <paramref name="samples"/> into <paramref name="worldSize"/> contiguous shards in rank
    /// order; the first (samples mod worldSize) shards get one sample more, so sizes differ by at most one.
    /// Deterministic: the same inputs always give the same shards.
    /// </summary>
    public static Shard[] Split(int samples, int worldSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(worldSize);
        if (samples < worldSize)
            throw new ArgumentOutOfRangeException(nameof(worldSize), $"{worldSize} workers need at least {worldSize} samples, got {samples}.");
        var shards = new Shard[worldSize];
        int baseSize = samples / worldSize, extra = samples % worldSize, start = 0;
        for (int r = 0; r < worldSize; r++)
        {
            int count = baseSize + (r < extra ? 1 : 0);
            shards[r] = new Shard(r, start, count);
            start += count;
        }
        return shards;
    }
}
