using Trainer.Core.Data;

namespace Trainer.Core.Tests;

/// <summary>Shard.Split: contiguous, rank-ordered, covering, balanced to within one sample.</summary>
public class ShardSplitTests
{
    public static TheoryData<int, int> SampleAndWorkerCounts() => new()
    {
        { 1, 1 }, { 64, 1 }, { 64, 2 }, { 64, 3 }, { 64, 64 }, { 10, 3 }, { 10, 4 }, { 7, 7 }, { 1000, 7 },
    };

    [Theory]
    [MemberData(nameof(SampleAndWorkerCounts))]
    public void Split_IsContiguousCoversEverySampleAndDiffersByAtMostOne(int samples, int workers)
    {
        var shards = Shard.Split(samples, workers);

        Assert.Equal(workers, shards.Length);
        int next = 0;
        for (int r = 0; r < shards.Length; r++)
        {
            Assert.Equal(r, shards[r].Rank);
            Assert.Equal(next, shards[r].Start);
            Assert.True(shards[r].Count >= 1, $"shard {r} is empty");
            next = shards[r].End;
        }
        Assert.Equal(samples, next);
        Assert.True(shards.Max(s => s.Count) - shards.Min(s => s.Count) <= 1);
    }

    [Fact]
    public void Split_GivesTheExtraSamplesToTheFirstRanks()
        => Assert.Equal([new Shard(0, 0, 4), new Shard(1, 4, 3), new Shard(2, 7, 3)], Shard.Split(10, 3));

    [Theory]
    [InlineData(3, 4)]
    [InlineData(0, 1)]
    public void Split_RejectsMoreWorkersThanSamples(int samples, int workers)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Shard.Split(samples, workers));
        Assert.Contains($"{workers} workers need at least {workers} samples, got {samples}", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-2)]
    public void Split_RejectsNonPositiveWorkerCounts(int workers)
        => Assert.Throws<ArgumentOutOfRangeException>(() => Shard.Split(10, workers));
}
