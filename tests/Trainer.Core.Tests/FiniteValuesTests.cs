using Trainer.Core.Data;

namespace Trainer.Core.Tests;

/// <summary>NaN and infinities are refused at load, naming the source, row and column.</summary>
public class FiniteValuesTests
{
    [Theory]
    [InlineData(double.NaN, "NaN")]
    [InlineData(double.PositiveInfinity, "+infinity")]
    [InlineData(double.NegativeInfinity, "-infinity")]
    public void Require_NamesTheFirstNonFiniteValuesRowAndColumn(double bad, string described)
    {
        // 40 rows of 7: long enough for the vectorized check, the bad value deep inside.
        var values = TestArrays.Normal(280, seed: 1);
        values[23 * 7 + 5] = bad;
        values[30 * 7 + 1] = double.NaN;

        var e = Assert.Throws<DataValueException>(() => FiniteValues.Require(values, 7, "x.npy"));

        Assert.Equal($"x.npy: row 23, column 5 (counting from 0) is {described}; every value must be a finite number.", e.Message);
    }

    [Fact]
    public void Require_AcceptsFiniteValues_ExtremesIncluded()
    {
        double[] values = [double.MaxValue, double.MinValue, double.Epsilon, -0.0, 0, 1];

        FiniteValues.Require(values, 3, "x.npy");
    }
}
