using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A data-parallel run over links, in one process as two silos would run it: the parameter server and
/// worker 0 share one silo's links (in process; plain SGD sends that worker the parameters), worker 1
/// has its own (TCP; it is sent the update). The runners step the same arithmetic as the single-process
/// trainer; a bug in a worker's step
/// comes back to the parameter server as an error no replay can fix, naming the worker and the bug;
/// a worker whose cache went missing ends the window as lost state (which the job recovers from).
/// The completed steps stand either way.
/// </summary>
public sealed class ServerRunnerTests
{
    private const string Job = "server-runner-test";
    private static readonly TrainingSpec Spec = Jobs.Small(workers: 2, steps: 20);

    [Fact]
    public async Task StepsOverLinks_HaveTheSingleProcessTrainersLosses()
    {
        await using var run = await RunAsync(bugAtStep: null, loseCacheAtStep: null);

        var window = await run.Server.RunAsync(2, Spec.Steps - 1, long.MaxValue, _ => false);

        Assert.Null(window.Failure);
        double[] losses = [run.FirstLoss, .. window.Losses];
        Assert.Equal(Jobs.Local(Spec).Losses, losses);
        // The worker of the server's silo copied the server's parameters every step; the other applied every update itself.
        var (local, remote) = ((Observed)run.Replicas[0], (Observed)run.Replicas[1]);
        Assert.Equal((Spec.Steps - 1, 0), (local.Loads, local.Applies));
        Assert.Equal((0, Spec.Steps - 1), (remote.Loads, remote.Applies));
    }

    [Fact]
    public async Task ABugInAWorkersStep_FailsTheWindow_AsAnErrorNoReplayCanFix_NamingTheWorkerAndTheBug()
    {
        await using var run = await RunAsync(bugAtStep: 4, loseCacheAtStep: null);

        var window = await run.Server.RunAsync(2, 10, long.MaxValue, _ => false);

        var failure = Assert.IsType<WorkerStepException>(window.Failure);
        Assert.Equal(FailureKind.Fatal, Failures.Classify(failure));
        Assert.Equal($"Job {Job} step 4: worker 1 failed: OverflowException: {Observed.Bug}", failure.Message);
        Assert.Equal(Jobs.Local(Spec).Losses[1..3], window.Losses);
    }

    [Fact]
    public async Task AWorkerThatLostItsCache_FailsTheWindow_AsLostState_AndTheStepTakenAgainThroughOrleans_HasTheSingleProcessTrainersLoss()
    {
        await using var run = await RunAsync(bugAtStep: null, loseCacheAtStep: 5);

        var window = await run.Server.RunAsync(2, 10, long.MaxValue, _ => false);

        var failure = Assert.IsType<StateLostException>(window.Failure);
        Assert.Equal(FailureKind.Restore, Failures.Classify(failure));
        Assert.Contains("worker 1 holds no cache of the parameters after step 4", failure.Message);
        var expected = Jobs.Local(Spec).Losses;
        Assert.Equal(expected[1..4], window.Losses);
        // Step 5 as the messages plane then takes it, on the model the broken run left part-way through
        // step 5 (begun, worker 0's pack added): worker 0's cache already holds step 4's parameters, worker 1's is sent them.
        await Task.WhenAll(run.Workers.Select(worker => worker.StopAsync()));
        var update = run.Model.Update;
        byte[] sent = [.. update.Bytes];
        run.Model.Begin(5);
        for (int rank = 0; rank < run.Replicas.Length; rank++)
        {
            var replica = run.Replicas[rank];
            if (replica.StepsApplied == 3) replica.Apply(update);
            if (replica.StepsApplied != 4) replica.Load(run.Model.Parameters, 4);
            var (losses, pack) = replica.Compute();
            await run.Model.AddAsync(rank, losses, pack);
        }
        // The update workers may still be reading (an Orleans request offers it by reference) was not built over.
        Assert.Equal(sent, update.Bytes);
        Assert.Equal(expected[4], await run.Model.CompleteAsync(5));
    }

    /// <summary>
    /// Step 1 as the messages plane runs it (every run over links starts after one), then both workers'
    /// runners and the parameter server's linked in process.
    /// </summary>
    private static async Task<Run> RunAsync(int? bugAtStep, int? loseCacheAtStep)
    {
        var compute = new ComputeScheduler(2);
        var plan = ExchangePlan.For(Spec, factors: true);
        var data = Synthetic.Data(Spec.ResolvedSamples, Spec.Model.InputSize, Spec.Model.OutputSize, Spec.Seed);
        var model = ServerModel.Create(Spec, plan, compute);
        model.Load(new ModelState(InitialParameters.Float64(Spec)), 0, data);
        var replicas = new ShardReplica[Spec.Workers];
        model.Begin(1);
        for (int rank = 0; rank < replicas.Length; rank++)
        {
            // A factored first layer reads the whole batch's inputs on every worker.
            var replica = ShardReplica.Create(Spec, plan, rank, data, 0);
            replica.Load(InitialParameters.InJobPrecision(Spec), 0);
            var (losses, pack) = replica.Compute();
            await model.AddAsync(rank, losses, pack);
            if (replica.HasFactors) replica.PrecomputeOwn();
            replicas[rank] = new Observed(replica, rank == 1 ? bugAtStep : null, rank == 1 ? loseCacheAtStep : null);
        }
        double first = await model.CompleteAsync(1);

        // Two silos' links: the server's (worker 0 is on it) and worker 1's.
        WorkerLinks[] silos = [.. Enumerable.Range(0, 2).Select(_ => new WorkerLinks(new TestSiloDetails(), Options.Create(new TrainerOptions()), NullLogger<WorkerLinks>.Instance))];
        int server = Spec.Workers;
        WorkerLinks LinksOf(int rank) => silos[rank == 1 ? 1 : 0];
        string[] endpoints = [.. Enumerable.Range(0, server + 1).Select(rank => LinksOf(rank).Endpoint)];
        var token = TestContext.Current.CancellationToken;
        // As the parameter server does (PrepareLinksAsync): every end takes links before any opens.
        for (int rank = 0; rank <= server; rank++) LinksOf(rank).Prepare(Job, rank);
        var opened = await Task.WhenAll(Enumerable.Range(0, server + 1).Select(rank =>
            LinksOf(rank).OpenAsync(Job, 1, rank, endpoints, rank == server ? [0, 1] : [server], token)));
        var workers = Enumerable.Range(0, server).Select(rank => new ShardRunner(1, 2, rank, replicas[rank], opened[rank][server]!, Job, NullLogger.Instance)).ToArray();
        return new Run(new ServerRunner(1, model, [opened[server][0]!, opened[server][1]!], Job), workers, silos, compute, first, model, replicas);
    }

    private sealed record Run(ServerRunner Server, ShardRunner[] Workers, WorkerLinks[] Silos, ComputeScheduler Compute, double FirstLoss,
        ServerModel Model, ShardReplica[] Replicas) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Server.Dispose();
            await Task.WhenAll(Workers.Select(worker => worker.StopAsync()));
            foreach (var links in Silos) links.Dispose();
            Compute.Dispose();
        }
    }

    /// <summary>
    /// A worker's cache that counts how it was brought up to date during the run, and may throw
    /// <see cref="Bug"/> computing one step or lose its parameters before another.
    /// </summary>
    private sealed class Observed(ShardReplica inner, int? bugAtStep, int? loseCacheAtStep) : ShardReplica
    {
        public const string Bug = "injected: the step's arithmetic overflowed";
        private bool _lost;

        public int Loads { get; private set; }
        public int Applies { get; private set; }

        public override int StepsApplied => _lost ? -1 : inner.StepsApplied;

        public override void Load(TensorPayload parameters, int stepsCompleted)
        {
            inner.Load(parameters, stepsCompleted);
            _lost = false;
            Loads++;
        }

        public override TensorPayload ReceiveBuffer(int bytes) => inner.ReceiveBuffer(bytes);

        public override void Apply(TensorPayload update)
        {
            if (inner.StepsApplied + 2 == loseCacheAtStep) _lost = true;
            else inner.Apply(update);
            Applies++;
        }

        public override (double[] Losses, TensorPayload Pack) Compute() =>
            inner.StepsApplied + 1 == bugAtStep ? throw new OverflowException(Bug) : inner.Compute();

        public override (double[] Losses, TensorPayload Pack) ComputeAt(int step, TensorPayload parameters) => inner.ComputeAt(step, parameters);

        public override void Forget() => inner.Forget();

        public override bool HasFactors => inner.HasFactors;

        public override void PrecomputeOwn() => inner.PrecomputeOwn();
    }
}
