using Trainer.Core.Data;

namespace Trainer.Core.Tests.MiniBatches;

/// <summary>Which rows each step trains on: epochs of seeded shuffles, the remainder kept or dropped.</summary>
public sealed class BatchScheduleTests
{
    [Fact]
    public void AnEpoch_VisitsEveryRowOnce_InBatchesOfTheBatchSize_WithTheRemainderLast()
    {
        var schedule = new BatchSchedule(samples: 10, batch: 4, dropLast: false, seed: 3);

        Assert.Equal(3, schedule.BatchesPerEpoch);
        Assert.Equal([4, 4, 2], Enumerable.Range(1, 3).Select(schedule.SizeOf));
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var rows = Enumerable.Range(1 + 3 * epoch, 3).SelectMany(step => schedule.RowsOf(step).ToArray()).ToArray();
            Assert.Equal(Enumerable.Range(0, 10), rows.Order());
            Assert.True(schedule.EndsEpoch(3 * (epoch + 1)));
            Assert.Equal(epoch + 1, schedule.EpochOf(3 * epoch + 2));
        }
    }

    [Fact]
    public void DropLast_LeavesOutTheRemainder_SoEveryBatchIsFull()
    {
        var schedule = new BatchSchedule(samples: 10, batch: 4, dropLast: true, seed: 3);

        Assert.Equal(2, schedule.BatchesPerEpoch);
        Assert.Equal([4], schedule.Sizes);
        var rows = schedule.RowsOf(1).ToArray().Concat(schedule.RowsOf(2).ToArray()).ToArray();
        Assert.Equal(8, rows.Distinct().Count());
        Assert.Equal(3, schedule.EpochOf(5));
    }

    [Fact]
    public void EachEpoch_IsItsOwnShuffle_AndTheSameSeedGivesTheSameBatches()
    {
        var a = new BatchSchedule(samples: 100, batch: 100 / 4, dropLast: false, seed: 5);
        var b = new BatchSchedule(samples: 100, batch: 100 / 4, dropLast: false, seed: 5);
        var other = new BatchSchedule(samples: 100, batch: 100 / 4, dropLast: false, seed: 6);

        int[] Epoch(BatchSchedule s, int epoch) => [.. Enumerable.Range(1 + 4 * (epoch - 1), 4).SelectMany(step => s.RowsOf(step).ToArray())];
        Assert.NotEqual(Enumerable.Range(0, 100), Epoch(a, 1));
        Assert.NotEqual(Epoch(a, 1), Epoch(a, 2));
        // Asked out of order (a worker re-activated mid-job), the batches are the same.
        Assert.Equal(Epoch(a, 2), Epoch(b, 2));
        Assert.Equal(Epoch(a, 1), Epoch(b, 1));
        Assert.NotEqual(Epoch(a, 1), Epoch(other, 1));
    }

    [Fact]
    public void AllTheData_IsOneBatch_InFileOrder_AtEveryStep()
    {
        var schedule = new BatchSchedule(samples: 6, batch: 6, dropLast: false, seed: 9);

        Assert.True(schedule.Fixed);
        Assert.Equal(1, schedule.BatchesPerEpoch);
        foreach (int step in new[] { 1, 2, 77 }) Assert.Equal(Enumerable.Range(0, 6), schedule.RowsOf(step).ToArray());
    }

    [Fact]
    public void Gather_CopiesTheBatchsRows_FromTheGivenRowOn()
    {
        var schedule = new BatchSchedule(samples: 5, batch: 3, dropLast: false, seed: 1);
        double[] data = [.. Enumerable.Range(0, 10).Select(i => (double)i)]; // 5 rows of 2
        var to = new double[4];

        schedule.Gather<double>(1, data, 2, 1, to);

        var rows = schedule.RowsOf(1).ToArray();
        Assert.Equal([2.0 * rows[1], 2.0 * rows[1] + 1, 2.0 * rows[2], 2.0 * rows[2] + 1], to);
    }
}
