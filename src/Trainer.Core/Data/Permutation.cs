namespace Trainer.Core.Data;

/// <summary>The seeded shuffles of row indices that epochs (<see cref="BatchSchedule"/>) and the validation split (<see cref="ValidationSplit"/>) draw.</summary>
internal static class Permutation
{
    /// <summary>
    /// Fisher-Yates over <paramref name="order"/> (which must hold 0..n-1) driven by System.Random
    /// seeded with <paramref name="stream"/>. A seeded System.Random runs the same legacy generator on
    /// every platform and .NET version (documented), so every machine draws the same order.
    /// </summary>
    public static void Shuffle(Span<int> order, int stream)
    {
        var random = new Random(stream);
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
    }

    /// <summary>The stream of a job's <paramref name="seed"/> and one use of it (epoch e ≥ 1 of the batches; -1 for the validation split).</summary>
    public static int Stream(int seed, int use) => unchecked(seed * 1_000_003 + use);
}
