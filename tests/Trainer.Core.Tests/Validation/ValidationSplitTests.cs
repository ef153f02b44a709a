using Trainer.Core.Data;

namespace Trainer.Core.Tests.Validation;

/// <summary>--val-fraction's split: ceil(f·N) rows, a seeded random subset, both sets in file order.</summary>
public sealed class ValidationSplitTests
{
    [Theory]
    [InlineData(10, 0.25, 3)]
    [InlineData(512, 0.25, 128)]
    [InlineData(60_000, 0.1, 6_000)]
    [InlineData(7, 0.01, 1)]
    [InlineData(64, 0.2, 13)]
    [InlineData(64, 0.0, 0)]
    public void TheCount_IsTheCeilingOfTheFractionOfTheRows_AsScikitLearnCountsItsTestSize(int samples, double fraction, int expected)
    {
        Assert.Equal(expected, ValidationSplit.CountFor(samples, fraction));
    }

    [Theory]
    [InlineData(1.0, "'1'")]
    [InlineData(1.5, "'1.5'")]
    [InlineData(-0.1, "'-0.1'")]
    [InlineData(double.NaN, "'NaN'")]
    [InlineData(double.PositiveInfinity, "'Infinity'")]
    public void AFractionOutsideZeroToOne_IsRefused_NamingValFractionAndTheValue(double fraction, string shown)
    {
        var e = Assert.Throws<SpecException>(() => ValidationSplit.CountFor(100, fraction));

        Assert.Equal("val-fraction", e.Field);
        Assert.StartsWith($"val-fraction: {shown} is not allowed; allowed: a fraction of the training rows from 0", e.Message);
    }

    [Fact]
    public void AFractionThatLeavesNoRowToTrainOn_IsRefused()
    {
        // ceil(0.9 x 3) = 3 of 3 rows.
        var e = Assert.Throws<SpecException>(() => ValidationSplit.CountFor(3, 0.9));

        Assert.Equal("val-fraction: '0.9' is not allowed; it holds out 3 of the 3 samples, leaving none to train on.", e.Message);
    }

    [Fact]
    public void TheTwoSets_CoverEveryRowOnce_EachInFileOrder()
    {
        var split = new ValidationSplit(samples: 100, validation: 20, seed: 3);

        Assert.Equal(20, split.ValidationRows.Length);
        Assert.Equal(80, split.TrainingRows.Length);
        Assert.Equal(Enumerable.Range(0, 100), split.TrainingRows.Concat(split.ValidationRows).Order());
        Assert.Equal(split.ValidationRows.Order(), split.ValidationRows);
        Assert.Equal(split.TrainingRows.Order(), split.TrainingRows);
    }

    [Fact]
    public void TheHeldOutRows_AreARandomSubset_TheSameForTheSameSeed_OthersForAnother()
    {
        var a = new ValidationSplit(100, 20, seed: 3).ValidationRows;

        Assert.Equal(a, new ValidationSplit(100, 20, seed: 3).ValidationRows);
        Assert.NotEqual(a, new ValidationSplit(100, 20, seed: 4).ValidationRows);
        // Neither the file's head nor its tail: a sorted file would otherwise validate on classes it never trained on.
        Assert.NotEqual(Enumerable.Range(80, 20), a);
        Assert.NotEqual(Enumerable.Range(0, 20), a);
        Assert.Contains(a, row => row < 50);
        Assert.Contains(a, row => row >= 50);
    }

    /// <summary>The documented rule restated: the first V of a Fisher-Yates shuffle by System.Random(seed · 1,000,003 - 1), sorted.</summary>
    [Fact]
    public void TheHeldOutRows_AreTheFirstOfTheSeedsShuffle_AsDocumented()
    {
        const int samples = 50, validation = 7, seed = 11;
        var order = Enumerable.Range(0, samples).ToArray();
        var random = new Random(seed * 1_000_003 - 1);
        for (int i = samples - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }

        Assert.Equal(order[..validation].Order(), new ValidationSplit(samples, validation, seed).ValidationRows);
    }

    [Fact]
    public void TrainingAndValidation_GatherTheirRows_InputsWithTargets()
    {
        // Row r holds x = (r, r + 0.5) and y = -r, so every gathered row says which it was.
        const int samples = 12;
        var x = Enumerable.Range(0, samples).SelectMany(r => new[] { r, r + 0.5 }).ToArray();
        var y = Enumerable.Range(0, samples).Select(r => -(double)r).ToArray();
        var data = new Dataset(x, y, samples, 2, 1);
        var split = new ValidationSplit(samples, 4, seed: 0);

        var validation = split.Validation(data).ToDataset();
        var training = split.Training(data).ToDataset();

        Assert.Equal(split.ValidationRows.SelectMany(r => new[] { r, r + 0.5 }), validation.X);
        Assert.Equal(split.ValidationRows.Select(r => -(double)r), validation.Y);
        Assert.Equal(split.TrainingRows.SelectMany(r => new[] { r, r + 0.5 }), training.X);
        Assert.Equal(split.TrainingRows.Select(r => -(double)r), training.Y);
    }
}
