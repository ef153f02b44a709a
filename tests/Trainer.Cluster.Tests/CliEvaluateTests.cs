using System.Globalization;
using System.Text.Json;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `trainer evaluate`: saved weights' loss and accuracy on a split of --data, against an independent
/// forward pass (<see cref="ReferenceMlp"/>) for weights `train --save` wrote, and against numpy's
/// recorded values for the reference classifier; weights or data that do not fit exit with 2.
/// </summary>
public sealed class CliEvaluateTests(TrainedClassifier classifier) : IClassFixture<TrainedClassifier>
{
    [Fact]
    public async Task TrainedWeights_OnIdxData_AreScoredOnTheTestSet_AsAnIndependentForwardPassScoresThem()
    {
        var (loss, correct) = Reference("t10k");

        var (code, output, err) = await Cli.RunAsync(["evaluate", "--weights", $"npy:{classifier.Weights}", "--data", TrainedClassifier.Data, .. TrainedClassifier.Model]);

        Assert.True(code == 0, err);
        string expected = $"test: 128 samples, loss {loss.ToString("G4", CultureInfo.InvariantCulture)}, accuracy {(100.0 * correct / 128).ToString("F2", CultureInfo.InvariantCulture)}%";
        Assert.Equal(expected, output.TrimEnd());
        // 20 steps of Adam learn well past the 10% of chance.
        Assert.True(correct > 64, $"only {correct} of 128 test images right");
    }

    [Theory]
    [InlineData("train", "train", 512)]
    [InlineData("test", "t10k", 128)]
    public async Task Json_IsOneEvaluationObject_WithTheExactLossAndAccuracyOfTheSplit(string split, string files, int samples)
    {
        var (loss, correct) = Reference(files);

        var (code, output, err) = await Cli.RunAsync(["evaluate", "--weights", $"npy:{classifier.Weights}", "--data", TrainedClassifier.Data, .. TrainedClassifier.Model, "--split", split, "--json"]);

        Assert.True(code == 0, err);
        var evaluation = JsonDocument.Parse(Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries))).RootElement;
        Assert.Equal("evaluation", evaluation.GetProperty("event").GetString());
        Assert.Equal(split, evaluation.GetProperty("split").GetString());
        Assert.Equal(samples, evaluation.GetProperty("samples").GetInt32());
        Assert.Equal(correct, evaluation.GetProperty("correct").GetInt32());
        Assert.Equal((double)correct / samples, evaluation.GetProperty("accuracy").GetDouble());
        double printed = evaluation.GetProperty("loss").GetDouble();
        Assert.True(Math.Abs(printed - loss) <= 1e-12 * loss, $"loss {printed:R}, the reference's {loss:R}");
    }

    [Theory]
    [InlineData("ce")]
    [InlineData("mse")]
    [InlineData("sse")]
    public async Task TheReferenceClassifier_ScoresAsNumpyRecorded_WithEveryLoss(string loss)
    {
        var weights = FormulaClassifier.WriteWeights();
        var (rows, correct, numpyLoss) = FormulaClassifier.Numpy(loss);

        var (code, output, err) = await Cli.RunAsync(["evaluate", "--weights", $"npy:{weights}", "--data", TrainedClassifier.Data, .. FormulaClassifier.Model,
            "--loss", loss, "--split", "train", "--json"]);

        Assert.True(code == 0, err);
        var evaluation = JsonDocument.Parse(output).RootElement;
        Assert.Equal(rows, evaluation.GetProperty("samples").GetInt32());
        // Class labels are one-hot targets: with sse and mse too, an accuracy is reported.
        Assert.Equal(correct, evaluation.GetProperty("correct").GetInt32());
        double printed = evaluation.GetProperty("loss").GetDouble();
        Assert.True(Math.Abs(printed - numpyLoss) <= 1e-12 * numpyLoss, $"{loss}: {printed:R}, numpy {numpyLoss:R}");
    }

    [Fact]
    public async Task RegressionTargets_GetTheLossAlone()
    {
        // 3-2 linear, w1 = [[1, 0, 0], [0, 1, 0]]: the outputs are the first two inputs.
        var weights = Cli.TempFolder();
        var data = Cli.TempFolder();
        CliBadInputTests.WriteNpy(weights, "w1.npy", [1, 0, 0, 0, 1, 0], 2, 3);
        CliBadInputTests.WriteNpy(data, "x.npy", [1, 2, 3, 4, 5, 6], 2, 3);
        CliBadInputTests.WriteNpy(data, "y.npy", [0.5, 2, 4, 4.25], 2, 2);
        // (1 - 0.5)² + 0 + 0 + (5 - 4.25)² = 0.8125, over 2 x 2 outputs.
        const double mse = 0.8125 / 4;

        var (code, output, err) = await Cli.RunAsync("evaluate", "--weights", $"npy:{weights}", "--data", $"npy:{data}", "--model", "3-2", "--loss", "mse");
        var (_, json, _) = await Cli.RunAsync("evaluate", "--weights", $"npy:{weights}", "--data", $"npy:{data}", "--model", "3-2", "--loss", "mse", "--json");

        Assert.True(code == 0, err);
        Assert.Equal("train: 2 samples, loss 0.2031", output.TrimEnd());
        Assert.Equal($$"""{"event":"evaluation","split":"train","samples":2,"loss":{{mse.ToString("R", CultureInfo.InvariantCulture)}},"accuracy":null,"correct":null}""", json.TrimEnd());
    }

    [Fact]
    public void TrainSave_WritesModelJson_WithTheModelTheWeightsWereTrainedAs()
    {
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(classifier.Weights, "model.json"))).RootElement;

        Assert.Equal("trainer-weights/1", manifest.GetProperty("format").GetString());
        Assert.Equal("784-32-10", manifest.GetProperty("model").GetString());
        Assert.Equal("relu", manifest.GetProperty("activation").GetString());
        Assert.True(manifest.GetProperty("bias").GetBoolean());
        Assert.Equal("ce", manifest.GetProperty("loss").GetString());
        Assert.Equal("float64", manifest.GetProperty("precision").GetString());
        Assert.Equal(20, manifest.GetProperty("step").GetInt32());
        Assert.StartsWith("job-", manifest.GetProperty("job").GetString());
    }

    [Fact]
    public async Task WeightsWithModelJson_NeedOnlyWeightsAndData_AndScoreAsWithTheModelTyped()
    {
        var (_, typed, _) = await Cli.RunAsync(["evaluate", "--weights", $"npy:{classifier.Weights}", "--data", TrainedClassifier.Data, .. TrainedClassifier.Model, "--json"]);

        var (code, output, err) = await Cli.RunAsync("evaluate", "--weights", $"npy:{classifier.Weights}", "--data", TrainedClassifier.Data, "--json");

        Assert.True(code == 0, err);
        Assert.Equal(typed, output);
        // ce from model.json: without it the defaults (sse, sigmoid, no biases) would not even load the weights.
        var (loss, correct) = Reference("t10k");
        var evaluation = JsonDocument.Parse(output).RootElement;
        Assert.Equal(correct, evaluation.GetProperty("correct").GetInt32());
        Assert.True(Math.Abs(evaluation.GetProperty("loss").GetDouble() - loss) <= 1e-12 * loss);
    }

    public static TheoryData<string, string, string[]> OptionsAgainstModelJson() => new()
    {
        // field, what the message must say, the option typed.
        { "model", "'784-64-10' is not allowed; the weights were trained with --model 784-32-10", ["--model", "784-64-10"] },
        { "activation", "'sigmoid' is not allowed; the weights were trained with --activation relu", ["--activation", "sigmoid"] },
        { "loss", "'mse' is not allowed; the weights were trained with --loss ce", ["--loss", "mse"] },
        { "bias", "'false' is not allowed; the weights were trained with biases", ["--bias", "false"] },
    };

    [Theory]
    [MemberData(nameof(OptionsAgainstModelJson))]
    public async Task AnOptionTypedAgainstModelJson_ExitsWith2_NamingTheValueItWasTrainedWith(string field, string message, string[] option)
    {
        var (code, output, err) = await Cli.RunAsync(["evaluate", "--weights", $"npy:{classifier.Weights}", "--data", TrainedClassifier.Data, .. option]);

        Assert.Equal(2, code);
        Assert.StartsWith($"trainer: error: {field}: {message}", err);
        Assert.Contains(Path.Combine(classifier.Weights, "model.json"), err);
        Assert.Equal("", output);
    }

    [Theory]
    [InlineData("{", "it cannot be read as this format's JSON")]
    [InlineData("""{"format":"trainer-weights/2","model":"784-32-10","activation":"relu","bias":true,"loss":"ce"}""", "its \"format\" is \"trainer-weights/2\"; this trainer reads \"trainer-weights/1\"")]
    [InlineData("""{"format":"trainer-weights/1","model":"784-32-10","activation":"relu","loss":"ce"}""", "it must give \"model\", \"activation\", \"bias\" and \"loss\"")]
    [InlineData("""{"format":"trainer-weights/1","model":"784-32-10","activation":"gelu","bias":true,"loss":"ce"}""", "its \"activation\" is \"gelu\" (allowed: sigmoid, tanh, relu)")]
    public async Task AModelJsonThatCannotBeRead_ExitsWith2_NamingTheFile(string text, string why)
    {
        var weights = CopyOfWeights(manifest: text);

        var (code, output, err) = await Cli.RunAsync(["evaluate", "--weights", $"npy:{weights}", "--data", TrainedClassifier.Data, .. TrainedClassifier.Model]);

        Assert.Equal(2, code);
        Assert.StartsWith($"trainer: error: weights: '{Path.Combine(weights, "model.json")}' is not allowed; {why}", err);
        Assert.EndsWith("; delete the file to give the model's options by hand.", err.TrimEnd());
        Assert.Equal("", output);
    }

    public static TheoryData<string, string[], string[]> BadInputs() => new()
    {
        // field, what the message must name, the options after --weights (of weights without model.json) and --data.
        { "weights", ["w1.npy'", "its shape is (32, 784); the model 784-64-10 needs (64, 784)"], ["--model", "784-64-10", "--activation", "relu", "--bias", "--loss", "ce"] },
        { "weights", ["b1.npy'", "the model 784-32-10 has no biases; pass --bias if the weights were trained with it"], ["--model", "784-32-10", "--activation", "relu", "--loss", "ce"] },
        { "split", ["'tset'", "allowed: train, test"], [.. TrainedClassifier.Model, "--split", "tset"] },
        { "scale", ["'-1'", "a finite number greater than 0"], [.. TrainedClassifier.Model, "--scale", "-1"] },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task WeightsOrOptionsThatDoNotFit_ExitWith2_NamingTheFieldAndWhatIsWrong(string field, string[] named, string[] options)
    {
        // Weights as another tool writes them: no model.json, so the typed options are the model.
        var weights = CopyOfWeights(manifest: null);

        var (code, output, err) = await Cli.RunAsync(["evaluate", "--weights", $"npy:{weights}", "--data", TrainedClassifier.Data, .. options]);

        Assert.Equal(2, code);
        Assert.StartsWith($"trainer: error: {field}: ", err);
        foreach (var text in named) Assert.Contains(text, err);
        Assert.Equal("", output);
    }

    [Fact]
    public async Task DataOfAnotherWidth_ExitsWith2_NamingTheModelItNeeds()
    {
        var data = Cli.TempFolder();
        CliBadInputTests.WriteNpy(data, "x.npy", new double[2 * 700], 2, 700);
        CliBadInputTests.WriteNpy(data, "y.npy", [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], 2, 10);

        var (code, _, err) = await Cli.RunAsync(["evaluate", "--weights", $"npy:{classifier.Weights}", "--data", $"npy:{data}", .. TrainedClassifier.Model]);

        Assert.Equal(2, code);
        Assert.Equal($"trainer: error: model: '784-32-10' is not allowed; the data in npy:{data} has 700 inputs and 10 targets per sample, so the model must be 700-...-10.", err.TrimEnd());
    }

    [Fact]
    public async Task AMissingWeightFile_ExitsWith2_NamingIt()
    {
        var weights = CopyOfWeights(manifest: null);
        File.Delete(Path.Combine(weights, "w2.npy"));

        var (code, _, err) = await Cli.RunAsync(["evaluate", "--weights", $"npy:{weights}", "--data", TrainedClassifier.Data, .. TrainedClassifier.Model]);

        Assert.Equal(2, code);
        Assert.Equal($"trainer: error: weights: 'npy:{weights}' is not allowed; {Path.Combine(weights, "w2.npy")} does not exist; the folder must hold w2.npy.", err.TrimEnd());
    }

    [Fact]
    public async Task ANonFiniteWeight_ExitsWith2_NamingTheFileRowAndColumn_ForEvaluateAndInit()
    {
        var weights = CopyOfWeights(manifest: null);
        var w2 = Path.Combine(weights, "w2.npy");
        var values = ReadNpy(w2);
        values[1 * 32 + 5] = double.NaN;
        CliBadInputTests.WriteNpy(weights, "w2.npy", values, 10, 32);

        var (code, _, err) = await Cli.RunAsync(["evaluate", "--weights", $"npy:{weights}", "--data", TrainedClassifier.Data, .. TrainedClassifier.Model]);

        Assert.Equal(2, code);
        Assert.Equal($"trainer: error: weights: '{w2}' is not allowed; {w2}: row 1, column 5 (counting from 0) is NaN; every value must be a finite number.", err.TrimEnd());
        (code, var output, err) = await Cli.RunAsync(["train", "--data", TrainedClassifier.Data, .. TrainedClassifier.Model, "--init", $"npy:{weights}", "--steps", "1"]);
        Assert.Equal(2, code);
        Assert.StartsWith($"trainer: error: init: '{w2}' is not allowed; {w2}: row 1, column 5", err);
        Assert.DoesNotContain("job job-", output);
    }

    [Fact]
    public async Task SavingASmallerModelIntoAWeightsFolder_RemovesTheEarlierModelsFiles_SoItsWeightsAreReadBack()
    {
        var weights = CopyOfWeights(manifest: null);

        var (code, output, err) = await Cli.RunAsync(["train", "--data", TrainedClassifier.Data, "--model", "784-10", "--loss", "ce", "--steps", "2",
            "--progress", "plain", "--save", $"npy:{weights}"]);

        Assert.True(code == 0, err);
        Assert.Contains($"saved weights to {weights} (removed b1.npy, b2.npy, w2.npy, an earlier model's)", output);
        Assert.Equal(["model.json", "w1.npy"], Directory.GetFiles(weights).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        (code, _, err) = await Cli.RunAsync(["evaluate", "--weights", $"npy:{weights}", "--data", TrainedClassifier.Data]);
        Assert.True(code == 0, err);
    }

    [Fact]
    public async Task ASaveFolderWhoseWeightFileIsAFolder_IsRefusedBeforeTraining()
    {
        var weights = Cli.TempFolder();
        Directory.CreateDirectory(Path.Combine(weights, "w2.npy"));

        var (code, output, err) = await Cli.RunAsync(["train", "--data", TrainedClassifier.Data, .. TrainedClassifier.Model, "--steps", "1", "--save", $"npy:{weights}"]);

        Assert.Equal(2, code);
        Assert.Equal($"trainer: error: save: 'npy:{weights}' is not allowed; {Path.Combine(weights, "w2.npy")} is a folder, where the weights' files go; remove it or save elsewhere.", err.TrimEnd());
        Assert.DoesNotContain("job job-", output);
    }

    private static double[] ReadNpy(string path)
    {
        using var stream = File.OpenRead(path);
        return Trainer.Core.Data.Npy.Read(stream, path).Data;
    }

    [Theory]
    [InlineData("weights", "--data", "idx:")]
    [InlineData("data", "--weights", "npy:")]
    public async Task NoWeightsOrNoData_ExitsWith2_SayingWhatIsAllowed(string missing, string given, string scheme)
    {
        var (code, _, err) = await Cli.RunAsync(["evaluate", given, scheme + Cli.SmallFashionMnist, .. TrainedClassifier.Model]);

        Assert.Equal(2, code);
        Assert.StartsWith($"trainer: error: {missing}: '(none)' is not allowed; allowed: ", err);
    }

    [Fact]
    public async Task TheTestSplit_OfDataWithoutOne_ExitsWith2()
    {
        var data = Cli.TempFolder();
        CliBadInputTests.WriteNpy(data, "x.npy", [1, 2, 3], 1, 3);
        CliBadInputTests.WriteNpy(data, "y.npy", [1, 0], 1, 2);
        var weights = Cli.TempFolder();
        CliBadInputTests.WriteNpy(weights, "w1.npy", new double[6], 2, 3);

        var (code, _, err) = await Cli.RunAsync("evaluate", "--weights", $"npy:{weights}", "--data", $"npy:{data}", "--model", "3-2", "--split", "test");

        Assert.Equal(2, code);
        Assert.Equal($"trainer: error: split: 'test' is not allowed; the data in npy:{data} has no test set (only idx:DIR folders with t10k-* files have one); allowed: train.", err.TrimEnd());
    }

    /// <summary>The classifier's .npy files in a folder of their own, with <paramref name="manifest"/> as its model.json (null: none).</summary>
    private string CopyOfWeights(string? manifest)
    {
        var weights = Cli.TempFolder();
        foreach (var file in Directory.GetFiles(classifier.Weights, "*.npy")) File.Copy(file, Path.Combine(weights, Path.GetFileName(file)));
        if (manifest is not null) File.WriteAllText(Path.Combine(weights, "model.json"), manifest);
        return weights;
    }

    /// <summary>The reference's mean cross-entropy and correct count of the trained weights on a split of the fixture.</summary>
    private (double Loss, int Correct) Reference(string split)
    {
        var model = ReferenceMlp.Load(classifier.Weights, layers: 2);
        var (images, labels) = ReferenceMlp.Fixture(split);
        var outputs = images.Select(model.Outputs).ToArray();
        Assert.True(ReferenceMlp.SmallestGap(outputs) > 1e-9, "two outputs too close for argmax to be the same everywhere");
        double loss = outputs.Select((z, r) => ReferenceMlp.CrossEntropy(z, labels[r])).Sum() / labels.Length;
        return (loss, outputs.Where((z, r) => ReferenceMlp.Argmax(z) == labels[r]).Count());
    }
}
