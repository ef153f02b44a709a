using System.Globalization;
using System.Numerics;

namespace Trainer.Core.Data;

/// <summary>
/// Class labels and the target rows a classifier trains on: N labels become one-hot rows
/// (N x classes), and cross-entropy's target rows must be distributions (one-hot, or probabilities).
/// </summary>
public static class Labels
{
    /// <summary>How far a target row's sum may be from 1: float32 probabilities summed in float64 are within ~1e-7.</summary>
    public const double RowSumTolerance = 1e-6;

    /// <summary>
    /// One-hot rows: row r is 1 at column labels[r], 0 elsewhere. A label that is not a whole number
    /// from 0 to classes - 1 is refused, naming <paramref name="source"/>, the row, the value and the range.
    /// </summary>
    public static double[] OneHot<T>(ReadOnlySpan<T> labels, int classes, string source) where T : INumber<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        var rows = new double[(long)labels.Length * classes];
        for (int r = 0; r < labels.Length; r++)
            rows[(long)r * classes + RequireClass(labels[r], r, classes, source)] = 1.0;
        return rows;
    }

    /// <summary>
    /// Label <paramref name="label"/> of row <paramref name="row"/> as a class index: a whole number
    /// from 0 to classes - 1, or refused naming <paramref name="source"/>, the row, the value and the range.
    /// </summary>
    public static int RequireClass<T>(T label, int row, int classes, string source) where T : INumber<T>
    {
        if (!T.IsInteger(label) || label < T.Zero || label >= T.CreateChecked(classes))
            throw new DataValueException(string.Create(CultureInfo.InvariantCulture, $"{source}: row {row} (counting from 0) has label {label}; allowed: a class from 0 to {classes - 1} (the model has {classes} outputs)."));
        return int.CreateChecked(label);
    }

    /// <summary>
    /// True when every row of <paramref name="targets"/> is one-hot (a single 1, the rest 0) and there
    /// are at least 2 classes: targets made from class labels, for which an accuracy means something.
    /// </summary>
    public static bool AreOneHot(ReadOnlySpan<double> targets, int classes)
    {
        if (classes < 2) return false;
        for (int r = 0; r < targets.Length / classes; r++)
        {
            var row = targets.Slice(r * classes, classes);
            if (row.Count(1.0) != 1 || row.Count(0.0) != classes - 1) return false;
        }
        return true;
    }

    /// <summary>
    /// Refuses target rows cross-entropy cannot train on: every value must be in [0, 1] and every
    /// row must sum to 1 (within <see cref="RowSumTolerance"/>). Names the row and what is wrong.
    /// </summary>
    public static void RequireDistributions(ReadOnlySpan<double> targets, int classes, string source)
    {
        for (int r = 0; r < targets.Length / classes; r++)
        {
            var row = targets.Slice(r * classes, classes);
            double sum = 0;
            for (int k = 0; k < classes; k++)
            {
                if (!(row[k] >= 0 && row[k] <= 1))
                    throw new DataValueException(string.Create(CultureInfo.InvariantCulture, $"{source}: row {r}, column {k} (counting from 0) is {row[k]}; cross-entropy targets must be one-hot rows or probabilities, each value from 0 to 1 (or give class labels as a 1-D array)."));
                sum += row[k];
            }
            if (Math.Abs(sum - 1) > RowSumTolerance)
                throw new DataValueException(string.Create(CultureInfo.InvariantCulture, $"{source}: row {r} (counting from 0) sums to {sum}; cross-entropy targets must be one-hot rows or probabilities summing to 1 (or give class labels as a 1-D array)."));
        }
    }
}
