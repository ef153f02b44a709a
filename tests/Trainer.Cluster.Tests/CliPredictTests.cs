using System.Globalization;
using System.Text.Json;
using Trainer.Core.Data;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `trainer predict`: every sample's class is the argmax of an independent forward pass
/// (<see cref="ReferenceMlp"/>) of the weights `train --save` wrote, with its softmax probabilities
/// (ce) or raw outputs; printed in part, or all of them in --out (.npy classes, .csv scores) or --json.
/// </summary>
public sealed class CliPredictTests(TrainedClassifier classifier) : IClassFixture<TrainedClassifier>
{
    private string[] Predict(params string[] options) =>
        ["predict", "--weights", $"npy:{classifier.Weights}", "--data", TrainedClassifier.Data, .. TrainedClassifier.Model, .. options];

    [Fact]
    public async Task OutNpy_HoldsEveryTestSamplesClassAsInt64_TheArgmaxOfAnIndependentForwardPass()
    {
        var file = Path.Combine(Cli.TempFolder(), "classes.npy");
        var expected = Reference().Select(ReferenceMlp.Argmax).Select(c => (double)c).ToArray();

        var (code, output, err) = await Cli.RunAsync(Predict("--out", file));

        Assert.True(code == 0, err);
        using var stream = File.OpenRead(file);
        var classes = Npy.Read(stream, file);
        Assert.Equal("int64", classes.DtypeName);
        Assert.Equal([128], classes.Shape);
        Assert.Equal(expected, classes.Data);
        Assert.Contains($"wrote 128 predictions to {file} (the classes, int64, shape (128,))", output);
    }

    [Fact]
    public async Task OutCsv_HoldsIndexClassAndEachClassesSoftmaxProbability_ForCe()
    {
        var file = Path.Combine(Cli.TempFolder(), "predictions.csv");
        var outputs = Reference();

        var (code, _, err) = await Cli.RunAsync(Predict("--out", file));

        Assert.True(code == 0, err);
        var lines = File.ReadAllLines(file);
        Assert.Equal("index,class,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9", lines[0]);
        Assert.Equal(outputs.Length + 1, lines.Length);
        for (int i = 0; i < outputs.Length; i++)
        {
            var fields = lines[i + 1].Split(',');
            Assert.Equal([i.ToString(CultureInfo.InvariantCulture), ReferenceMlp.Argmax(outputs[i]).ToString(CultureInfo.InvariantCulture)], fields[..2]);
            AssertClose(ReferenceMlp.Softmax(outputs[i]), fields[2..].Select(f => double.Parse(f, CultureInfo.InvariantCulture)).ToArray());
        }
    }

    [Fact]
    public async Task WithoutOut_PrintsTheFirstTenPredictionsAndTheCountPerClass_WithTheModelFromModelJson()
    {
        var outputs = Reference();
        var classes = outputs.Select(ReferenceMlp.Argmax).ToArray();
        var expected = new List<string> { "test: 128 samples" };
        for (int i = 0; i < 10; i++)
            expected.Add($"  sample {i}: class {classes[i]}, probability {ReferenceMlp.Softmax(outputs[i])[classes[i]].ToString("G4", CultureInfo.InvariantCulture)}");
        expected.Add("  (118 more; --out FILE.npy or FILE.csv writes every prediction)");
        expected.Add("predicted per class: " + string.Join(", ", Enumerable.Range(0, 10).Select(c => $"{c}: {classes.Count(k => k == c)}")));

        // As a user types it after `train --save`: the model (ce, so probabilities) comes from the weights' model.json.
        var (code, output, err) = await Cli.RunAsync("predict", "--weights", $"npy:{classifier.Weights}", "--data", TrainedClassifier.Data);

        Assert.True(code == 0, err);
        Assert.Equal(expected, output.TrimEnd().Split('\n'));
    }

    [Fact]
    public async Task Json_IsOneLinePerSample_ThenASummaryWithTheCountPerClass()
    {
        var outputs = Reference();
        var classes = outputs.Select(ReferenceMlp.Argmax).ToArray();

        var (code, output, err) = await Cli.RunAsync(Predict("--split", "test", "--json"));

        Assert.True(code == 0, err);
        var events = Cli.JsonLines(output);
        Assert.Equal(129, events.Length);
        for (int i = 0; i < 128; i++)
        {
            Assert.Equal("prediction", events[i].GetProperty("event").GetString());
            Assert.Equal(i, events[i].GetProperty("index").GetInt32());
            Assert.Equal(classes[i], events[i].GetProperty("class").GetInt32());
            AssertClose(ReferenceMlp.Softmax(outputs[i]), events[i].GetProperty("probabilities").EnumerateArray().Select(p => p.GetDouble()).ToArray());
        }
        var summary = events[^1];
        Assert.Equal("predictions", summary.GetProperty("event").GetString());
        Assert.Equal(128, summary.GetProperty("samples").GetInt32());
        Assert.Equal(Enumerable.Range(0, 10).Select(c => classes.Count(k => k == c)), summary.GetProperty("per_class").EnumerateArray().Select(n => n.GetInt32()));
        Assert.Equal(JsonValueKind.Null, summary.GetProperty("out").ValueKind);
    }

    [Fact]
    public async Task NpyInputsAlone_ArePredicted_WithTheRawOutputsForMse()
    {
        var weights = FormulaClassifier.WriteWeights();
        var data = Cli.TempFolder();
        var images = ReferenceMlp.Fixture("t10k").Images[..5];
        CliBadInputTests.WriteNpy(data, "x.npy", [.. images.SelectMany(x => x)], 5, 784);
        var file = Path.Combine(Cli.TempFolder(), "outputs.csv");
        var model = ReferenceMlp.Load(weights, layers: 2);

        var (code, output, err) = await Cli.RunAsync(["predict", "--weights", $"npy:{weights}", "--data", $"npy:{data}", .. FormulaClassifier.Model, "--loss", "mse", "--out", file]);

        Assert.True(code == 0, err);
        Assert.StartsWith("train: 5 samples", output);
        Assert.True(ReferenceMlp.SmallestGap(images.Select(model.Outputs)) > 1e-9, "two outputs too close for argmax to be the same everywhere");
        var lines = File.ReadAllLines(file);
        Assert.Equal("index,class,z0,z1,z2,z3,z4,z5,z6,z7,z8,z9", lines[0]);
        for (int i = 0; i < 5; i++)
        {
            var z = model.Outputs(images[i]);
            var fields = lines[i + 1].Split(',');
            Assert.Equal(ReferenceMlp.Argmax(z).ToString(CultureInfo.InvariantCulture), fields[1]);
            AssertClose(z, fields[2..].Select(f => double.Parse(f, CultureInfo.InvariantCulture)).ToArray());
        }
    }

    [Theory]
    [InlineData("predictions.txt", "allowed: a file name ending in .npy (the classes, int64) or .csv")]
    [InlineData("missing/predictions.csv", "its folder")]
    public async Task AnOutFileThatCannotBeWritten_ExitsWith2_BeforeAnythingIsRead(string name, string allowed)
    {
        var file = Path.Combine(Cli.TempFolder(), name);

        var (code, _, err) = await Cli.RunAsync(Predict("--out", file));

        Assert.Equal(2, code);
        Assert.StartsWith($"trainer: error: out: '{file}' is not allowed; ", err);
        Assert.Contains(allowed, err);
        Assert.False(File.Exists(file));
    }

    [Fact]
    public async Task InputsOfAnotherWidth_ExitWith2_NamingTheWidthTheModelNeeds()
    {
        var data = Cli.TempFolder();
        CliBadInputTests.WriteNpy(data, "x.npy", new double[2 * 700], 2, 700);

        var (code, _, err) = await Cli.RunAsync(["predict", "--weights", $"npy:{classifier.Weights}", "--data", $"npy:{data}", .. TrainedClassifier.Model]);

        Assert.Equal(2, code);
        Assert.Equal($"trainer: error: model: '784-32-10' is not allowed; the data in npy:{data} has 700 inputs per sample, so the model's first width must be 700.", err.TrimEnd());
    }

    [Fact]
    public async Task NpyDataWithoutInputs_ExitsWith2_NamingTheMissingFile()
    {
        var data = Cli.TempFolder();

        var (code, _, err) = await Cli.RunAsync(["predict", "--weights", $"npy:{classifier.Weights}", "--data", $"npy:{data}", .. TrainedClassifier.Model]);

        Assert.Equal(2, code);
        Assert.Contains($"{Path.Combine(data, "x.npy")} does not exist", err);
    }

    /// <summary>The reference's outputs (logits) of the trained weights for the fixture's 128 test images.</summary>
    private double[][] Reference()
    {
        var model = ReferenceMlp.Load(classifier.Weights, layers: 2);
        var outputs = ReferenceMlp.Fixture("t10k").Images.Select(model.Outputs).ToArray();
        Assert.True(ReferenceMlp.SmallestGap(outputs) > 1e-9, "two outputs too close for argmax to be the same everywhere");
        return outputs;
    }

    private static void AssertClose(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int k = 0; k < expected.Length; k++)
            Assert.True(Math.Abs(expected[k] - actual[k]) <= 1e-12 * Math.Max(1, Math.Abs(expected[k])), $"value {k}: {actual[k]:R}, the reference's {expected[k]:R}");
    }
}
