using System.Text.Json;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// Loss and accuracy of fixed classifiers on the small Fashion-MNIST fixture against numpy
/// (tests/reference/evaluation/make_numpy_values.py, which reads the files and runs the models
/// independently), for every loss and whatever rows per forward pass.
/// </summary>
public class EvaluationTests
{
    public static TheoryData<string, LossKind, int> CasesLossesAndBatchRows()
    {
        var data = new TheoryData<string, LossKind, int>();
        foreach (var name in new[] { "centroids", "relu_formula" })
            foreach (var loss in Enum.GetValues<LossKind>())
                foreach (var rows in new[] { Evaluation.DefaultBatchRows, 100, 1 })
                    data.Add(name, loss, rows);
        return data;
    }

    [Theory]
    [MemberData(nameof(CasesLossesAndBatchRows))]
    public void LossAndAccuracy_MatchNumpy_WhateverTheRowsPerPass(string name, LossKind loss, int batchRows)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Reference.PathOf("evaluation", "numpy_values.json")));
        var expected = doc.RootElement.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);
        var (model, parameters, data) = name == "centroids" ? Centroids(loss) : ReluFormula(loss);

        var result = new Evaluation(model, batchRows).Evaluate(parameters, data);

        Assert.Equal(expected.GetProperty("rows").GetInt32(), result.Samples);
        Assert.Equal(expected.GetProperty("correct").GetInt32(), result.Correct);
        Assert.Equal(result.Correct / (double)result.Samples, result.Accuracy);
        double numpy = expected.GetProperty("losses").GetProperty(loss.Name()).GetDouble();
        Assert.True(TestArrays.RelativeDifference(result.Loss, numpy) < 1e-12, $"{name} {loss.Name()}: loss {result.Loss:R}, numpy {numpy:R}");
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    [InlineData(4, false)]
    [InlineData(4, true)]
    public async Task OnSeveralThreads_TheResultHasTheBitsOfOneThread_ForArraysAndForRowsReadABatchAtATime(int threads, bool view)
    {
        var (model, parameters, data) = ReluFormula(LossKind.CrossEntropy);
        // A view that is not a Dataset is read a batch at a time into each thread's own buffers.
        ISampleRows rows = view ? data.Range(1, data.Count - 1) : data;
        var one = new Evaluation(model, batchRows: 7).Evaluate(parameters, rows);
        var evaluation = new Evaluation(model, batchRows: 7);

        // Twice: the second call reuses the threads' buffers.
        for (int call = 0; call < 2; call++)
        {
            var many = await evaluation.EvaluateAsync(parameters, rows, threads, Task.Run);

            Assert.Equal(BitConverter.DoubleToInt64Bits(one.Loss), BitConverter.DoubleToInt64Bits(many.Loss));
            Assert.Equal(one.Correct, many.Correct);
            Assert.Equal(one.Samples, many.Samples);
        }
    }

    [Fact]
    public void Accuracy_TakesTheFirstOfEqualOutputs_AndCountsOnlyArgmaxMatches()
    {
        // 2-2 identity model: outputs = inputs. Rows: a tie (first wins: class 0), a clear 1, a clear 0 against target 1.
        var model = new ModelSpec([2, 2], loss: LossKind.CrossEntropy);
        double[] identity = [1, 0, 0, 1];
        var data = new Dataset([0.5, 0.5, 0, 3, 2, 1], [1, 0, 0, 1, 0, 1], 3, 2, 2);

        var result = new Evaluation(model).Evaluate(identity, data);

        Assert.Equal(2, result.Correct);
    }

    /// <summary>784-10 nearest class mean: w_c = mean training image of class c, b_c = -|w_c|²/2; the 128 test images.</summary>
    private static (ModelSpec, double[], Dataset) Centroids(LossKind loss)
    {
        var train = Fixture("train");
        var model = new ModelSpec([784, 10], loss: loss, bias: true);
        var layout = ParameterLayout.For(model);
        var parameters = new double[layout.Count];
        var w = layout.Weight(1).Of(parameters.AsSpan());
        var b = layout.Bias(1)!.Of(parameters.AsSpan());
        var counts = new int[10];
        for (int r = 0; r < train.Count; r++)
        {
            int c = Array.IndexOf(train.Y, 1.0, r * 10, 10) - r * 10;
            counts[c]++;
            for (int i = 0; i < 784; i++) w[c * 784 + i] += train.X[r * 784 + i];
        }
        for (int c = 0; c < 10; c++)
        {
            for (int i = 0; i < 784; i++) w[c * 784 + i] /= counts[c];
            double square = 0;
            for (int i = 0; i < 784; i++) square += w[c * 784 + i] * w[c * 784 + i];
            b[c] = -0.5 * square;
        }
        return (model, parameters, Fixture("t10k"));
    }

    /// <summary>784-32-10 relu with biases, weights from the script's sine formulas; the 512 training images.</summary>
    private static (ModelSpec, double[], Dataset) ReluFormula(LossKind loss)
    {
        var model = new ModelSpec([784, 32, 10], Activation.Relu, loss, bias: true);
        var layout = ParameterLayout.For(model);
        var p = new double[layout.Count];
        Fill(layout["w1"].Of(p.AsSpan()), i => 0.05 * Math.Sin(0.37 * i + 1));
        Fill(layout["b1"].Of(p.AsSpan()), j => 0.1 * Math.Cos(j));
        Fill(layout["w2"].Of(p.AsSpan()), i => 0.3 * Math.Sin(0.91 * i + 2));
        Fill(layout["b2"].Of(p.AsSpan()), j => 0.05 * j);
        return (model, p, Fixture("train"));

        static void Fill(Span<double> values, Func<int, double> rule)
        {
            for (int i = 0; i < values.Length; i++) values[i] = rule(i);
        }
    }

    private static Dataset Fixture(string split)
    {
        var images = Reference.ReadIdx(Path.Combine(Reference.SmallFashionMnist, $"{split}-images-idx3-ubyte.gz"), images: true);
        var labels = Reference.ReadIdx(Path.Combine(Reference.SmallFashionMnist, $"{split}-labels-idx1-ubyte.gz"), images: false);
        return new Dataset(Idx.Values(images.Data, scale: null), Labels.OneHot<byte>(labels.Data, 10, "labels"), images.Count, 784, 10);
    }
}
