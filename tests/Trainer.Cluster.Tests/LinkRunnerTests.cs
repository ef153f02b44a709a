using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Trainer.Abstractions;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A split worker's runner hands a failed window's whole exception back to its worker grain: a bug in
/// the step is fatal to the job, while the peers it leaves waiting see a broken link, which is not.
/// </summary>
public sealed class LinkRunnerTests
{
    private const string Job = "runner-test";

    [Fact]
    public async Task ABugInAStep_ComesBackWhole_AndThePeersWindowFailsOnTheBrokenLink()
    {
        using var silo = new WorkerLinks(new TestSiloDetails(), Options.Create(new TrainerOptions()), NullLogger<WorkerLinks>.Instance);
        string[] endpoints = [silo.Endpoint, silo.Endpoint];
        var opening = new[] { silo.OpenAsync(Job, 1, 0, endpoints, cancel: TestContext.Current.CancellationToken), silo.OpenAsync(Job, 1, 1, endpoints, cancel: TestContext.Current.CancellationToken) };
        var links = await Task.WhenAll(opening);
        using var zero = new LinkRunner(1, 0, new Replica(rank: 0, bugAtStep: null), links[0], Job);
        using var one = new LinkRunner(1, 1, new Replica(rank: 1, bugAtStep: 3), links[1], Job);

        var windows = await Task.WhenAll(zero.RunAsync(1, 10, TensorPayload.Empty, false), one.RunAsync(1, 10, TensorPayload.Empty, false));

        var bug = Assert.IsType<OverflowException>(windows[1].Failure);
        Assert.Equal(FailureKind.Fatal, Failures.Classify(bug));
        Assert.Contains(nameof(Replica.Step), bug.StackTrace);
        Assert.Equal([1.0, 2.0], windows[1].Losses);
        var broken = Assert.IsType<IOException>(windows[0].Failure);
        Assert.Contains("worker 1", broken.Message);
        Assert.NotEqual(FailureKind.Fatal, Failures.Classify(broken));
        Assert.True(zero.Broken && one.Broken);
    }

    /// <summary>Two ranks of 8-byte blocks; each step's loss is its number, and rank <paramref name="rank"/> throws at <paramref name="bugAtStep"/>.</summary>
    private sealed class Replica(int rank, int? bugAtStep) : LinkedReplica
    {
        private int _steps = -1;

        public override int StepsApplied => _steps;

        public override int LastStep => 100;

        public override BlockLayout Layout { get; } = new([0, 8], [8, 8], 16);

        public override void Load(TensorPayload modelState, int stepsCompleted, Span<byte> block)
        {
            _steps = stepsCompleted;
            block.Fill((byte)rank);
        }

        public override double Step(ReadOnlySpan<byte> blocks, Span<byte> next)
        {
            int step = _steps + 1;
            if (step == bugAtStep) throw new OverflowException("Arithmetic operation resulted in an overflow.");
            _steps = step;
            next.Fill((byte)rank);
            return step;
        }

        public override TensorPayload Share() => TensorPayload.Empty;
    }
}
