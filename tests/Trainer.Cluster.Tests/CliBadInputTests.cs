using Trainer.Core.Data;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Every bad input ends with exit code 2 and one line naming the field, the value and what is
/// allowed, before any cluster is contacted.
/// </summary>
public sealed class CliBadInputTests
{
    [Theory]
    [InlineData("activation", "--activation", "swish", "sigmoid, tanh, relu")]
    [InlineData("loss", "--loss", "mae", "sse, mse, ce")]
    [InlineData("model", "--model", "1000-x-10", "positive layer widths")]
    [InlineData("model", "--model", "1000", "two or more")]
    [InlineData("batch", "--batch", "0", "greater than 0")]
    [InlineData("batch", "--batch", "-5", "greater than 0")]
    [InlineData("batch", "--batch", "100000000", "from 1 to 16777216")]
    [InlineData("batch", "--batch", "300000", "at most 268435 samples for 1000-100-10")]
    [InlineData("steps", "--steps", "0", "from 1")]
    [InlineData("steps", "--steps", "-1", "from 1")]
    [InlineData("lr", "--lr", "0", "greater than 0")]
    [InlineData("lr", "--lr", "-0.1", "greater than 0")]
    [InlineData("lr", "--lr", "NaN", "finite")]
    [InlineData("lr", "--lr", "Infinity", "finite")]
    [InlineData("workers", "--workers", "65", "at most the batch size 64")]
    [InlineData("workers", "--workers", "0", "from 1")]
    [InlineData("engine", "--engine", "jax", "hand, autograd")]
    [InlineData("parallel", "--parallel", "pipeline", "auto, data, split")]
    [InlineData("init", "--init", "zeros", "normal, xavier, he")]
    [InlineData("data", "--data", "csv:/tmp", "npy:DIR")]
    [InlineData("gateway", "--gateway", "localhost", "host:port")]
    [InlineData("gateway", "--gateway", "nohost.invalid:30000", "its host name does not resolve to an IPv4 address")]
    [InlineData("checkpoint-every", "--checkpoint-every", "-1", ">= 0")]
    [InlineData("checkpoint-min-seconds", "--checkpoint-min-seconds", "-1", "from 0 to 86400")]
    [InlineData("checkpoint-min-seconds", "--checkpoint-min-seconds", "NaN", "from 0 to 86400")]
    [InlineData("optimizer", "--optimizer", "rmsprop", "sgd, momentum, nesterov, adam, adamw")]
    [InlineData("momentum", "--momentum", "1", "from 0 up to (not including) 1")]
    [InlineData("momentum", "--momentum", "-0.5", "from 0 up to (not including) 1")]
    [InlineData("beta1", "--beta1", "1", "from 0 up to (not including) 1")]
    [InlineData("beta2", "--beta2", "1.5", "from 0 up to (not including) 1")]
    [InlineData("beta2", "--beta2", "NaN", "from 0 up to (not including) 1")]
    [InlineData("eps", "--eps", "0", "greater than 0")]
    [InlineData("weight-decay", "--weight-decay", "-0.01", ">= 0")]
    [InlineData("lr-schedule", "--lr-schedule", "linear", "constant, step, cosine")]
    [InlineData("warmup-steps", "--warmup-steps", "-1", "from 0 to the job's 1")]
    [InlineData("warmup-steps", "--warmup-steps", "2", "from 0 to the job's 1")]
    [InlineData("lr-step-every", "--lr-step-every", "0", "greater than 0")]
    [InlineData("lr-gamma", "--lr-gamma", "0", "greater than 0 and at most 1")]
    [InlineData("lr-gamma", "--lr-gamma", "1.5", "greater than 0 and at most 1")]
    [InlineData("ps-shards", "--ps-shards", "-1", "from 0 (automatic) to 64")]
    [InlineData("ps-shards", "--ps-shards", "65", "from 0 (automatic) to 64")]
    public async Task BadOption_ExitsWith2_NamingFieldValueAndWhatIsAllowed(string field, string option, string value, string allowed)
    {
        string[] args = option == "--steps" ? ["train", option, value] : ["train", option, value, "--steps", "1"];
        var (code, _, err) = await Cli.RunAsync(args);

        Assert.Equal(2, code);
        Assert.Contains($"{field}: '{value}'", err);
        Assert.Contains(allowed, err);
    }

    [Theory]
    [InlineData("parallel: 'split'", "allowed only with --engine hand", "--parallel", "split", "--engine", "autograd")]
    [InlineData("workers: '11'", "at most 10 with --parallel split", "--parallel", "split", "--model", "1000-10-10", "--workers", "11")]
    [InlineData("parallel: 'split'", "allowed only for a model with a hidden layer", "--parallel", "split", "--model", "1000-10", "--workers", "1")]
    [InlineData("ps-shards: '2'", "allowed only with --parallel data", "--parallel", "split", "--ps-shards", "2")]
    [InlineData("ps-shards: '9'", "at most one shard per parameter, so at most 8", "--model", "2-2-2", "--ps-shards", "9", "--workers", "1")]
    public async Task ASplitJobTheModelCannotTake_ExitsWith2_NamingTheField(string field, string allowed, params string[] options)
    {
        var (code, _, err) = await Cli.RunAsync(["train", .. options, "--steps", "1"]);

        Assert.Equal(2, code);
        Assert.Contains(field, err);
        Assert.Contains(allowed, err);
    }

    [Fact]
    public async Task AModelLargerThanOneArray_ExitsWith2_BeforeAnyStep()
    {
        // 268,453,422 parameters: 18 thousand more than one array of float64 values holds.
        var (code, output, err) = await Cli.RunAsync(["train", "--model", "20000-13422-1", "--optimizer", "adam", "--steps", "1"]);

        Assert.Equal(2, code);
        Assert.Contains("model: '20000-13422-1'", err);
        Assert.Contains("the model has 268453422 parameters (2048 MB as float64); they must fit one array", err);
        Assert.Contains("so at most 268435448 parameters are allowed", err);
        Assert.DoesNotContain("step 1", output);
    }

    [Fact]
    public async Task ASplitAdamJobWhoseMergedStateWouldNotFitOneArray_ExitsWith2_NamingTheModel()
    {
        // 100M parameters: a data-parallel adam job may have them, a split one merges them with m and v into one 2.4 GB array.
        var (code, output, err) = await Cli.RunAsync(["train", "--model", "10000-10000-10", "--optimizer", "adam", "--parallel", "split", "--steps", "1"]);

        Assert.Equal(2, code);
        Assert.Contains("model: '10000-10000-10'", err);
        Assert.Contains("so with --parallel split and adam at most 89478482 parameters are allowed (--parallel data: 268435448)", err);
        Assert.DoesNotContain("step 1", output);
    }

    [Fact]
    public async Task MissingDataFolder_NamesTheMissingFile()
    {
        var folder = Cli.TempFolder();

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"npy:{folder}");

        Assert.Equal(2, code);
        Assert.Contains("data:", err);
        Assert.Contains(Path.Combine(folder, "x.npy") + " does not exist", err);
    }

    [Fact]
    public async Task MalformedNpy_IsRejectedNamingTheFile()
    {
        var folder = Cli.TempFolder();
        File.WriteAllText(Path.Combine(folder, "x.npy"), "this is not numpy");
        WriteNpy(folder, "y.npy", new double[4 * 10], 4, 10);

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"npy:{folder}");

        Assert.Equal(2, code);
        Assert.Contains("x.npy: not a .npy file", err);
    }

    [Fact]
    public async Task WrongDtype_IsRejectedNamingTheDtypeAndWhatIsAllowed()
    {
        var folder = Cli.TempFolder();
        var bytes = NpyBytes(new double[4 * 1000], 4, 1000);
        var header = System.Text.Encoding.Latin1.GetString(bytes, 0, 128).Replace("'<f8'", "'<f2'");
        System.Text.Encoding.Latin1.GetBytes(header).CopyTo(bytes, 0);
        File.WriteAllBytes(Path.Combine(folder, "x.npy"), bytes);
        WriteNpy(folder, "y.npy", new double[4 * 10], 4, 10);

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"npy:{folder}");

        Assert.Equal(2, code);
        Assert.Contains("dtype '<f2' is not supported", err);
        Assert.Contains("float64", err);
    }

    [Fact]
    public async Task DataThatDoesNotFitTheModel_IsRejectedNamingBoth()
    {
        var folder = Cli.TempFolder();
        WriteNpy(folder, "x.npy", new double[4 * 7], 4, 7);
        WriteNpy(folder, "y.npy", new double[4 * 10], 4, 10);

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"npy:{folder}", "--workers", "1");

        Assert.Equal(2, code);
        Assert.Contains("model: '1000-100-10'", err);
        Assert.Contains("7 inputs and 10 targets", err);
    }

    [Fact]
    public async Task MoreWorkersThanSamplesInTheFile_IsRejected()
    {
        var folder = Cli.TempFolder();
        WriteNpy(folder, "x.npy", new double[3 * 5], 3, 5);
        WriteNpy(folder, "y.npy", new double[3 * 2], 3, 2);

        var (code, _, err) = await Cli.RunAsync("train", "--data", $"npy:{folder}", "--model", "5-4-2", "--workers", "4");

        Assert.Equal(2, code);
        Assert.Contains("workers: '4'", err);
        Assert.Contains("batch size 3", err);
    }

    [Fact]
    public async Task InitWeightsOfTheWrongShape_AreRejectedNamingTheFileAndBothShapes()
    {
        var folder = Cli.TempFolder();
        WriteNpy(folder, "w1.npy", new double[100 * 999], 100, 999);
        WriteNpy(folder, "w2.npy", new double[10 * 100], 10, 100);

        var (code, _, err) = await Cli.RunAsync("train", "--init", $"npy:{folder}");

        Assert.Equal(2, code);
        Assert.Contains("init:", err);
        Assert.Contains("w1.npy", err);
        Assert.Contains("(100, 999)", err);
        Assert.Contains("(100, 1000)", err);
    }

    [Fact]
    public void AGatewayListWithAHostNameThatDoesNotResolve_KeepsTheOthers_AndRefusesOnlyWhenNoneResolves()
    {
        Assert.Equal([new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 30001)],
            Trainer.Client.ClusterConnection.ParseGateways("nohost.invalid:30000,127.0.0.1:30001"));
        var refused = Assert.Throws<Trainer.Core.SpecException>(() => Trainer.Client.ClusterConnection.ParseGateways("nohost.invalid:30000,other.invalid:30001"));
        Assert.Equal("gateway: 'nohost.invalid:30000,other.invalid:30001' is not allowed; none of its host names resolves to an IPv4 address; "
            + "allowed: host:port[,host:port...], e.g. 127.0.0.1:30000,127.0.0.1:30001.", refused.Message);
    }

    [Fact]
    public async Task UnparsableNumber_ExitsWith2()
    {
        var (code, _, err) = await Cli.RunAsync("train", "--steps", "many");

        Assert.Equal(2, code);
        Assert.Contains("many", err);
    }

    internal static void WriteNpy(string folder, string file, double[] data, params int[] shape)
    {
        using var stream = File.Create(Path.Combine(folder, file));
        Npy.Write(stream, data, shape);
    }

    private static byte[] NpyBytes(double[] data, params int[] shape)
    {
        using var stream = new MemoryStream();
        Npy.Write(stream, data, shape);
        return stream.ToArray();
    }
}
