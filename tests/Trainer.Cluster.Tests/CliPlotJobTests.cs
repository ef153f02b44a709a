using System.Text.RegularExpressions;
using System.Xml.Linq;
using Trainer.Abstractions;
using Trainer.Client;

namespace Trainer.Cluster.Tests;

/// <summary>
/// `trainer plot JOB` reads a job's losses from a running cluster (a silo on loopback TCP in this
/// process): every loss, exactly, in batches; an unknown job is bad input and nothing is written.
/// </summary>
public sealed partial class CliPlotJobTests : IAsyncLifetime
{
    private LoopbackSilo _silo = null!;

    private static readonly string[] Job = ["--model", "20-8-3", "--batch", "13", "--workers", "2", "--seed", "7", "--lr", "1e-3", "--steps", "12"];

    public async ValueTask InitializeAsync() => _silo = await LoopbackSilo.StartAsync(TestContext.Current.CancellationToken);

    public ValueTask DisposeAsync() => _silo.DisposeAsync();

    [Fact]
    public async Task TheJobReader_GivesEveryStepAndTheSingleProcessLoss()
    {
        var id = await TrainAsync();
        await using var cluster = await ClusterConnection.OpenAsync(_silo.Gateway, "trainer", "trainer", verbose: false, TestContext.Current.CancellationToken);

        var series = await new JobLossReader(new ClusterRetry(TextWriter.Null)).ReadAsync(cluster.Client.GetGrain<ITrainingJobGrain>(id), id, TestContext.Current.CancellationToken);

        Assert.Equal(id, series.Name);
        Assert.Equal(Enumerable.Range(1, 12), series.Steps);
        Assert.Equal(Jobs.Local(Jobs.Small(workers: 2, steps: 12)).Losses, series.Losses);
    }

    [Fact]
    public async Task AJobAndALog_AreDrawnTogether_EachWithItsLegend()
    {
        var id = await TrainAsync();
        var log = LossLogReaderTests.Log("other.log", LossLogReaderTests.Steps((1, 90), (2, 80), (3, 70)));
        var svg = Path.Combine(Cli.TempFolder(), "both.svg");

        var (code, output, err) = await Cli.RunAsync("plot", id, log, "--gateway", _silo.Gateway, "--out", svg, "--log-y");

        Assert.True(code == 0, err);
        Assert.Equal($"wrote {svg}: loss against step for {id}, other.log", output.TrimEnd());
        var document = XDocument.Load(svg);
        Assert.Equal(12, LossPlotTests.PointsOfLine(document, 0));
        Assert.Equal(3, LossPlotTests.PointsOfLine(document, 1));
        Assert.Contains(id, LossPlotTests.Texts(document));
    }

    [Fact]
    public async Task AnUnknownJob_ExitsWith2_AndNothingIsWritten()
    {
        var png = Path.Combine(Cli.TempFolder(), "loss.png");

        var (code, _, err) = await Cli.RunAsync("plot", "job-000000000000", "--gateway", _silo.Gateway, "--out", png);

        Assert.Equal(2, code);
        Assert.Equal("trainer: error: job: 'job-000000000000' is not allowed; it must be the id of a job submitted to this cluster (see `trainer list`).", err.TrimEnd());
        Assert.False(File.Exists(png));
    }

    private async Task<string> TrainAsync()
    {
        var (code, output, err) = await Cli.RunAsync(["train", .. Job, "--gateway", _silo.Gateway]);
        Assert.True(code == 0, err);
        return JobIdPattern().Match(output).Groups[1].Value;
    }

    [GeneratedRegex(@"^job (\S+) on ", RegexOptions.Multiline)]
    private static partial Regex JobIdPattern();
}
