namespace Trainer.Core.Data;

/// <summary>
/// Which samples each step of a job trains on. The training data's <see cref="Samples"/> rows are
/// gone through in epochs of <see cref="BatchesPerEpoch"/> mini-batches of <see cref="Batch"/> rows;
/// each epoch is its own seeded permutation of the rows, and the last batch of an epoch holds the
/// rows left over (fewer than <see cref="Batch"/>) unless <see cref="DropLast"/> drops them.
/// When the batch is all the data (<see cref="Fixed"/>: the seed's full-batch descent) every step
/// trains on every row in file order: a permutation would only change the rounding of the sums.
/// </summary>
/// <remarks>
/// Every worker and the parameter server build the same schedule from the spec and find each
/// step's rows themselves; nothing about the batches travels. A schedule is not thread-safe: it
/// keeps the latest epoch's permutation.
/// </remarks>
public sealed class BatchSchedule
{
    private readonly int _seed;
    private int[] _order = [];
    private int _orderEpoch;

    public BatchSchedule(int samples, int batch, bool dropLast, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        if (samples < batch) throw new ArgumentOutOfRangeException(nameof(samples), samples, $"A batch of {batch} needs at least {batch} samples.");
        (Samples, Batch, DropLast, _seed) = (samples, batch, dropLast, seed);
        BatchesPerEpoch = BatchesIn(samples, batch, dropLast);
    }

    /// <summary>The batches of an epoch of <paramref name="samples"/> rows in batches of <paramref name="batch"/>, without making a schedule.</summary>
    public static int BatchesIn(int samples, int batch, bool dropLast) =>
        samples == batch || dropLast ? samples / batch : (samples + batch - 1) / batch;

    public int Samples { get; }
    public int Batch { get; }
    public bool DropLast { get; }
    public int BatchesPerEpoch { get; }

    /// <summary>One batch of every row, in order, at every step.</summary>
    public bool Fixed => Samples == Batch;

    /// <summary>The size of an epoch's last batch: <see cref="Batch"/>, or the rows left over when they are kept.</summary>
    public int LastBatch => DropLast || Samples % Batch == 0 ? Batch : Samples % Batch;

    /// <summary>The batch sizes steps can have: <see cref="Batch"/>, and <see cref="LastBatch"/> when smaller.</summary>
    public IReadOnlyList<int> Sizes => LastBatch == Batch ? [Batch] : [Batch, LastBatch];

    /// <summary>The 1-based epoch of 1-based step <paramref name="step"/>.</summary>
    public int EpochOf(int step) => (step - 1) / BatchesPerEpoch + 1;

    /// <summary>Whether <paramref name="step"/> is the last of its epoch.</summary>
    public bool EndsEpoch(int step) => step % BatchesPerEpoch == 0;

    /// <summary>The epochs <paramref name="steps"/> steps reach into (the last may be partial).</summary>
    public int EpochsIn(int steps) => (steps + BatchesPerEpoch - 1) / BatchesPerEpoch;

    /// <summary>The steps of <paramref name="epochs"/> whole epochs.</summary>
    public long StepsFor(int epochs) => (long)epochs * BatchesPerEpoch;

    public int SizeOf(int step) => (step - 1) % BatchesPerEpoch == BatchesPerEpoch - 1 ? LastBatch : Batch;

    /// <summary>The rows (0-based indices into the data) of step <paramref name="step"/>'s batch, in batch order.</summary>
    public ReadOnlySpan<int> RowsOf(int step)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(step);
        int epoch = EpochOf(step);
        if (_order.Length == 0) _order = new int[Samples];
        // A fixed schedule's order never changes; a shuffled one is redrawn, in place, once per epoch.
        if (_orderEpoch == 0 || !Fixed && _orderEpoch != epoch)
        {
            Order(_order, Fixed ? 0 : _seed, Fixed ? 0 : epoch);
            _orderEpoch = epoch;
        }
        return _order.AsSpan((step - 1) % BatchesPerEpoch * Batch, SizeOf(step));
    }

    /// <summary>
    /// Copies the rows of step <paramref name="step"/>'s batch from <paramref name="from"/> (values of
    /// <paramref name="width"/> per row) into <paramref name="to"/>, from the batch's row <paramref name="first"/> on.
    /// </summary>
    public void Gather<T>(int step, ReadOnlySpan<T> from, int width, int first, Span<T> to)
    {
        var rows = RowsOf(step);
        int count = to.Length / width;
        for (int i = 0; i < count; i++) from.Slice(rows[first + i] * width, width).CopyTo(to.Slice(i * width, width));
    }

    /// <summary>
    /// Reads the rows of step <paramref name="step"/>'s batch from <paramref name="from"/>, from the
    /// batch's row <paramref name="first"/> on: their inputs into <paramref name="inputs"/> (as many rows
    /// as it holds) and, unless it is empty, their targets into <paramref name="targets"/>.
    /// </summary>
    public void Gather<T>(int step, ISampleRows from, int first, Span<T> inputs, Span<T> targets) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var rows = RowsOf(step);
        int count = inputs.Length / from.InputSize;
        for (int i = 0; i < count; i++)
        {
            from.ReadInputs(rows[first + i], inputs.Slice(i * from.InputSize, from.InputSize));
            if (!targets.IsEmpty) from.ReadTargets(rows[first + i], targets.Slice(i * from.OutputSize, from.OutputSize));
        }
    }

    /// <summary>
    /// Epoch <paramref name="epoch"/>'s order into <paramref name="order"/>: file order for epoch 0
    /// (a fixed schedule), else a seeded shuffle of the job's seed and the epoch (<see cref="Permutation"/>).
    /// </summary>
    private static void Order(int[] order, int seed, int epoch)
    {
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (epoch == 0) return;
        Permutation.Shuffle(order, Permutation.Stream(seed, epoch));
    }
}
