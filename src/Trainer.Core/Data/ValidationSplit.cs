namespace Trainer.Core.Data;

/// <summary>
/// Which rows of a dataset are held out as its validation set (<c>--val-fraction f</c>): ceil(f·N)
/// of the N rows, as scikit-learn's <c>train_test_split(test_size=f)</c> counts them, chosen at random
/// by the job's seed (the first of a seeded shuffle of the rows, <see cref="Permutation"/>); the
/// others are the training rows. Both sets keep the file's order, so a split changes which rows a
/// job trains on, never how it goes through them.
/// </summary>
/// <remarks>
/// A random subset rather than the file's tail: files are often sorted (by class, by date), and a
/// tail would then validate on a class the job never saw. PyTorch users split with
/// <c>random_split(..., generator=torch.Generator().manual_seed(s))</c>; the rows differ (another
/// generator), the idea is the same.
/// </remarks>
public sealed class ValidationSplit
{
    /// <summary>The shuffle stream of the split, apart from every epoch's (which count from 1).</summary>
    private const int SplitStream = -1;

    public ValidationSplit(int samples, int validation, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(samples);
        ArgumentOutOfRangeException.ThrowIfNegative(validation);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(validation, samples);
        var order = new int[samples];
        for (int i = 0; i < samples; i++) order[i] = i;
        Permutation.Shuffle(order, Permutation.Stream(seed, SplitStream));
        ValidationRows = order[..validation];
        TrainingRows = order[validation..];
        Array.Sort(ValidationRows);
        Array.Sort(TrainingRows);
    }

    /// <summary>The held-out rows (0-based, ascending).</summary>
    public int[] ValidationRows { get; }

    /// <summary>The rows the job trains on (0-based, ascending).</summary>
    public int[] TrainingRows { get; }

    /// <summary>
    /// How many of <paramref name="samples"/> rows <c>--val-fraction</c> <paramref name="fraction"/> holds
    /// out: ceil(fraction · samples), so any fraction above 0 holds out at least one row. Refuses a
    /// fraction outside [0, 1), and one that would leave no row to train on.
    /// </summary>
    public static int CountFor(int samples, double fraction)
    {
        if (!double.IsFinite(fraction) || fraction < 0 || fraction >= 1)
            throw new SpecException(Field, fraction, "allowed: a fraction of the training rows from 0 (none held out) up to, not including, 1, e.g. 0.1");
        int count = (int)Math.Ceiling(fraction * samples);
        if (count >= samples)
            throw new SpecException(Field, fraction, $"it holds out {count} of the {samples} samples, leaving none to train on");
        return count;
    }

    /// <summary>The option the count comes from, which its errors name.</summary>
    public const string Field = "val-fraction";

    /// <summary>The rows of <paramref name="data"/> the job trains on, in file order, as a view (nothing is copied).</summary>
    public ISampleRows Training(ISampleRows data) => Pick(data, TrainingRows);

    /// <summary>The rows of <paramref name="data"/> held out as the validation set, in file order, as a view.</summary>
    public ISampleRows Validation(ISampleRows data) => Pick(data, ValidationRows);

    private ISampleRows Pick(ISampleRows data, int[] rows)
    {
        if (data.Count != TrainingRows.Length + ValidationRows.Length)
            throw new ArgumentException($"The split is of {TrainingRows.Length + ValidationRows.Length} rows; the data has {data.Count}.", nameof(data));
        return data.Pick(rows);
    }
}
