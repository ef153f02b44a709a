using System.Text.RegularExpressions;

namespace Trainer.Process.Tests;

/// <summary>
/// Silos on different addresses (--advertise, cluster.sh's TRAINER_SILO_ADDRESSES): Linux routes all
/// of 127/8 to loopback, so 127.0.0.1 and 127.0.0.2 stand for two hosts, and a silo that still bound
/// 127.0.0.1 alone (for its gateway or its workers' links) would fail here. Addresses that cannot be
/// used stop trainer-silo at start with exit code 2, naming the setting.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class SiloAddressTests
{
    [Fact]
    public async Task ASplitJobOverSilosOnTwoAddresses_LinksAcrossThem_AndEndsWithItsSingleProcessBits()
    {
        await using var cluster = await LocalCluster.CreateAsync(silos: 2, "--blas-threads 1", addresses: ["127.0.0.1", "127.0.0.2"]);
        var started = await cluster.StartAsync();
        Assert.Contains("gateways: 127.0.0.1:", started.Out);
        Assert.Contains($",127.0.0.2:{cluster.BaseGatewayPort + 1}", started.Out);
        // Workers 0 and 1 on silos 0 and 1: worker 0 links to worker 1 at silo 1's address.
        string[] job = ["--model", "1000-100-10", "--workers", "2", "--seed", "0", "--parallel", "split", "--steps", "300"];
        var split = Path.Combine(cluster.Folder, "split");

        var run = await cluster.TrainerAsync(["train", .. job, "--save", $"npy:{split}", "--json"]);

        Assert.True(run.Code == 0, run.ToString());
        Assert.Matches(LinksListen("127.0.0.2"), cluster.Log(1));
        Assert.Contains("Silo ready: gateway 127.0.0.2:", cluster.Log(1));
        Assert.Matches(LinkedTo("127.0.0.2"), cluster.Log(0));
        // The same job in one process (an embedded silo): the same losses and weights.
        var single = Path.Combine(cluster.Folder, "single");
        var reference = await cluster.EmbeddedTrainerAsync(TimeSpan.FromMinutes(3), ["train", .. job, "--save", $"npy:{single}", "--json"]);
        Assert.True(reference.Code == 0, reference.ToString());
        Assert.Equal(TrainJson.StepLosses(reference.Out), TrainJson.StepLosses(run.Out));
        Weights.AssertSameBytes(single, split, "of the job over two addresses, against the single process's,");
    }

    [Theory]
    [InlineData("--advertise", "0.0.0.0", "Silo:AdvertisedAddress: '0.0.0.0' is not allowed; allowed: the one IP address other silos and clients reach this silo at")]
    [InlineData("--advertise", "silo-1", "Silo:AdvertisedAddress: 'silo-1' is not allowed; allowed: an IP address (IPv4 or IPv6)")]
    [InlineData("--listen", "192.0.2.1", "Silo:ListenAddress: '192.0.2.1' is not allowed; allowed: an IP address of this machine, or 0.0.0.0 (every interface)")]
    [InlineData("--link-address", "192.0.2.1", "Trainer:SplitLinkAddress: '192.0.2.1' is not allowed; allowed: an IP address of this machine")]
    [InlineData("--Trainer:LinkReadTimeout", "00:05:00", "Trainer:LinkReadTimeout (00:05:00) must be below Trainer:WorkerCallTimeout (00:02:00)")]
    public async Task AnAddressOrTimeoutThatCannotBeUsed_StopsTheSilo_WithExitCode2_NamingTheSetting(string option, string value, string message)
    {
        using var processes = new ChildProcesses();
        await Repo.EnsureBuiltAsync(processes);
        var (silo, gateway) = SiloProcess.FreePorts();

        var result = await SiloProcess.RunAsync(processes, silo, gateway, option, value);

        Assert.True(result.Code == 2, result.ToString());
        Assert.Contains($"trainer-silo: error: {message}", result.Err);
        Assert.DoesNotContain("Silo ready", result.Out);
    }

    private static Regex LinksListen(string address) => new($@"Worker links listen on {Regex.Escape(address)}:\d+");

    private static Regex LinkedTo(string address) => new($@"Worker 0 of job \S+ linked to workers 1 \({Regex.Escape(address)}:\d+\)");
}
