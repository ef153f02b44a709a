using Trainer.Core.Data;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// The micro-shard tree: the cut depends only on the batch and the micro-shard count; each worker's
/// blocks are tree nodes covering exactly its micro-shards; and summing any worker count's blocks up
/// the schedule is the very same expression as summing the micro-shards one by one.
/// </summary>
public class MicroShardsTests
{
    [Fact]
    public void Cut_IsContiguousEqualRanges_IndependentOfWorkers()
    {
        var micro = new MicroShards(batch: 10, count: 4);
        Assert.Equal([new Shard(0, 0, 3), new Shard(1, 3, 3), new Shard(2, 6, 2), new Shard(3, 8, 2)], micro.Leaves);
        Assert.Equal(2, micro.Height);
        // 3 workers own 2, 1 and 1 micro-shards: samples [0, 6), [6, 8), [8, 10).
        Assert.Equal([new Shard(0, 0, 6), new Shard(1, 6, 2), new Shard(2, 8, 2)], Enumerable.Range(0, 3).Select(r => micro.RowsOf(r, 3)));
    }

    [Fact]
    public void Blocks_AreTheMaximalNodesOfAWorkersMicroShards()
    {
        var micro = new MicroShards(batch: 64, count: 8);
        // 3 workers own micro-shards [0, 3), [3, 6), [6, 8).
        Assert.Equal([new TreeNode(1, 0), new TreeNode(0, 2)], micro.BlocksOf(0, 3));
        Assert.Equal([new TreeNode(0, 3), new TreeNode(1, 2)], micro.BlocksOf(1, 3));
        Assert.Equal([new TreeNode(1, 3)], micro.BlocksOf(2, 3));
        Assert.Equal([micro.Root], micro.BlocksOf(0, 1));
        // A ragged tree: 5 micro-shards, the fifth is the root's right child on its own.
        var ragged = new MicroShards(batch: 5, count: 5);
        Assert.Equal([new TreeNode(1, 0), new TreeNode(0, 2)], ragged.BlocksOf(0, 2));
        Assert.Equal([new TreeNode(0, 3), new TreeNode(2, 1)], ragged.BlocksOf(1, 2));
        Assert.Equal(new TreeNode(2, 1), ragged.Canonical(new TreeNode(0, 4)));
    }

    [Fact]
    public void Owned_RefusesMoreWorkersThanMicroShards_SayingHowMany()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new MicroShards(batch: 8, count: 2).Owned(0, 3));
        Assert.Contains("3 workers need at least as many micro-shards; the batch has 2.", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MicroShards(batch: 3, count: 4));
    }

    public static TheoryData<int> Counts() => [.. Enumerable.Range(1, 17)];

    [Theory]
    [MemberData(nameof(Counts))]
    public void EveryWorkerCount_SumsTheSameTree(int count)
    {
        // Sums are written out as expressions: the same string is the same IEEE operations in the same order.
        var micro = new MicroShards(batch: 3 * count, count);
        var leaves = micro.LeavesOf(micro.Root);
        string alone = Sum(micro, micro.Schedule(leaves), [.. leaves.Select(l => $"m{l.Index}")]);
        Assert.Equal(count, alone.Count(c => c == 'm'));
        for (int workers = 1; workers <= count; workers++)
        {
            var blocks = Enumerable.Range(0, workers).SelectMany(r => micro.BlocksOf(r, workers)).ToArray();
            // Each block is its own micro-shards summed up the same tree, as the worker does it.
            string[] values = [.. blocks.Select(b => Sum(micro, micro.Schedule(micro.LeavesOf(b)), [.. micro.LeavesOf(b).Select(l => $"m{l.Index}")]))];
            Assert.Equal(alone, Sum(micro, micro.Schedule(blocks), values));
        }
    }

    [Fact]
    public void TheTree_IsNotALeftFold()
    {
        // What lets a worker add its own micro-shards before it has the others'.
        var micro = new MicroShards(batch: 4, count: 4);
        var leaves = micro.LeavesOf(micro.Root);
        Assert.Equal("((m0+m1)+(m2+m3))", Sum(micro, micro.Schedule(leaves), ["m0", "m1", "m2", "m3"]));
        var three = new MicroShards(batch: 3, count: 3);
        Assert.Equal("((m0+m1)+m2)", Sum(three, three.Schedule(three.LeavesOf(three.Root)), ["m0", "m1", "m2"]));
    }

    [Fact]
    public void Schedule_RefusesInputsThatAreNotOneSubtreeInOrder()
    {
        var micro = new MicroShards(batch: 4, count: 4);
        var e = Assert.Throws<ArgumentException>(() => micro.Schedule([new TreeNode(0, 1), new TreeNode(0, 0)]));
        Assert.Contains("do not cover one node of the tree over 4 micro-shards", e.Message);
    }

    [Fact]
    public void Reduce_SumsLossesUpTheSchedule()
    {
        var micro = new MicroShards(batch: 4, count: 4);
        var schedule = micro.Schedule(micro.LeavesOf(micro.Root));
        // Rounding tells the orders apart: the tree gives (1e16 + 1) + (-1e16 + 1) = 0, a left fold 1.
        double[] values = [1e16, 1, -1e16, 1];
        Assert.Equal(1.0, ((values[0] + values[1]) + values[2]) + values[3]);
        Assert.Equal(0.0, MicroShards.Reduce(schedule, values, new double[MicroShards.SlotsOf(schedule)]));
    }

    private static string Sum(MicroShards micro, ReduceStep[] schedule, string[] inputs)
    {
        var slots = new string[MicroShards.SlotsOf(schedule)];
        foreach (var step in schedule)
        {
            slots[step.Slot] = step.Op switch
            {
                ReduceOp.Set => inputs[step.Input],
                ReduceOp.Add => $"({slots[step.Slot]}+{inputs[step.Input]})",
                _ => $"({slots[step.Slot]}+{slots[step.Slot + 1]})",
            };
        }
        return slots[0];
    }
}
