using Trainer.Core.Data;

namespace Trainer.Core.Tests;

/// <summary>Class labels to one-hot rows, and the target rows cross-entropy accepts, with errors naming row and value.</summary>
public class LabelsTests
{
    [Fact]
    public void OneHot_PutsA1AtEachRowsLabel()
    {
        byte[] labels = [2, 0, 1, 2];

        var rows = Labels.OneHot<byte>(labels, classes: 3, "y.idx");

        Assert.Equal([0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1], rows);
    }

    [Theory]
    [InlineData(10.0, "y.npy: row 2 (counting from 0) has label 10; allowed: a class from 0 to 9 (the model has 10 outputs).")]
    [InlineData(-1.0, "y.npy: row 2 (counting from 0) has label -1; allowed: a class from 0 to 9 (the model has 10 outputs).")]
    [InlineData(2.5, "y.npy: row 2 (counting from 0) has label 2.5; allowed: a class from 0 to 9 (the model has 10 outputs).")]
    public void OneHot_RefusesALabelOutsideTheClasses_NamingFileRowValueAndRange(double label, string message)
    {
        double[] labels = [3, 9, label, 0];

        var e = Assert.Throws<DataValueException>(() => Labels.OneHot<double>(labels, classes: 10, "y.npy"));

        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void RequireDistributions_AcceptsOneHotAndProbabilityRows()
    {
        double[] rows = [0, 1, 0, 0.25, 0.5, 0.25, 0.1f, 0.2f, 0.7f];

        Labels.RequireDistributions(rows, 3, "y.npy");
    }

    [Theory]
    [InlineData(new double[] { 0, 1, 0, -0.5, 1.5, 0 }, "y.npy: row 1, column 0 (counting from 0) is -0.5; cross-entropy targets must be one-hot rows or probabilities, each value from 0 to 1")]
    [InlineData(new double[] { 0, 1, 0, 0, 1, 1 }, "y.npy: row 1 (counting from 0) sums to 2; cross-entropy targets must be one-hot rows or probabilities summing to 1")]
    [InlineData(new double[] { 0, 0, 0, 0, 1, 0 }, "y.npy: row 0 (counting from 0) sums to 0; cross-entropy targets")]
    [InlineData(new double[] { 0, 1, 0, double.NaN, 1, 0 }, "y.npy: row 1, column 0 (counting from 0) is NaN;")]
    public void RequireDistributions_RefusesRowsThatAreNotDistributions_NamingTheRow(double[] rows, string message)
    {
        var e = Assert.Throws<DataValueException>(() => Labels.RequireDistributions(rows, 3, "y.npy"));

        Assert.StartsWith(message, e.Message);
    }
}
