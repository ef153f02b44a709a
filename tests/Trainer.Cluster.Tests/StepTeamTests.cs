using Microsoft.Extensions.Logging.Abstractions;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A data-parallel run as a step team (every worker on the parameter server's silo): one thread per worker
/// computes at the server's parameters in place, and the same threads add the packs up and step the
/// parameters part by part. The team must step the single-process trainer's arithmetic to the bit, for every
/// worker count and optimizer, across windows; a bug in a worker's step fails the window as an error no
/// replay can fix; a worker that leaves ends the window with the steps completed, which stand.
/// </summary>
public sealed class StepTeamTests
{
    private const string Job = "step-team-test";

    // Large enough that the add-up and the optimizer are cut into several parts (claimed by the team's threads).
    private static TrainingSpec Spec(int workers, OptimizerKind optimizer = OptimizerKind.Sgd, Precision precision = Precision.Float64, int steps = 12) =>
        Jobs.Small(workers, steps, batch: 13) with
        {
            Model = new ModelSpec([1000, 40, 5], Activation.Sigmoid, LossKind.Sse),
            Optimizer = new OptimizerSpec { Kind = optimizer },
            LearningRate = optimizer == OptimizerKind.Sgd ? 1e-3 : 1e-2,
            Precision = precision,
        };

    [Theory]
    [InlineData(1, OptimizerKind.Sgd, Precision.Float64)]
    [InlineData(2, OptimizerKind.Sgd, Precision.Float64)]
    [InlineData(3, OptimizerKind.Sgd, Precision.Float64)]
    [InlineData(2, OptimizerKind.Adam, Precision.Float64)]
    [InlineData(3, OptimizerKind.Momentum, Precision.Float64)]
    [InlineData(2, OptimizerKind.Sgd, Precision.Float32)]
    [InlineData(2, OptimizerKind.AdamW, Precision.Float32)]
    public async Task ATeamsSteps_HaveTheSingleProcessTrainersLossesAndParameters_BitForBit(int workers, OptimizerKind optimizer, Precision precision)
    {
        var spec = Spec(workers, optimizer, precision);
        using var team = Form(spec, out var model, bugAtStep: null);
        Assert.True(model.SharedParts > 1, "the model should be cut into several parts");

        // Three windows: the threads meet, part, and meet again between them.
        var losses = new List<double>();
        foreach (int steps in new[] { 1, 4, spec.Steps - 5 })
        {
            var window = await team.RunAsync(losses.Count + 1, steps, long.MaxValue, _ => false);
            Assert.Null(window.Failure);
            losses.AddRange(window.Losses);
        }

        var expected = Jobs.Local(spec);
        Assert.Equal(expected.Losses, losses);
        var parameters = new double[expected.Parameters.Length];
        model.CopyParameters(parameters);
        Assert.Equal(expected.Parameters, parameters);
    }

    [Fact]
    public async Task ATeamOfMiniBatches_HasTheSingleProcessTrainersLosses_BitForBit()
    {
        var spec = Spec(2, OptimizerKind.Adam) with { Samples = 40, Batch = 12, Steps = 9 };
        var data = Synthetic.Data(spec.Samples, spec.Model.InputSize, spec.Model.OutputSize, seed: 21);
        using var team = Form(spec, out _, bugAtStep: null, data);

        var window = await team.RunAsync(1, spec.Steps, long.MaxValue, _ => false);

        Assert.Null(window.Failure);
        Assert.Equal(Jobs.Local(spec, data).Losses, window.Losses);
    }

    [Fact]
    public async Task ABugInAWorkersStep_FailsTheWindow_AsAnErrorNoReplayCanFix_NamingTheWorkerAndTheBug_AndTheTeamStaysStopped()
    {
        var spec = Spec(2);
        using var team = Form(spec, out _, bugAtStep: 4);

        var window = await team.RunAsync(1, 10, long.MaxValue, _ => false);

        var failure = Assert.IsType<WorkerStepException>(window.Failure);
        Assert.Equal(FailureKind.Fatal, Failures.Classify(failure));
        Assert.Equal($"Job {Job} step 4: worker 1 failed: OverflowException: {Bug}", failure.Message);
        Assert.Equal(Jobs.Local(spec).Losses[..3], window.Losses);
        Assert.NotNull((await team.RunAsync(4, 1, long.MaxValue, _ => false)).Failure);
    }

    [Fact]
    public async Task AWorkerThatLeaves_EndsTheWindowAfterTheStepInHand_WhoseStepsStand_AndGetsItsReplicaBackForgotten()
    {
        var spec = Spec(2);
        var replicas = new ShardReplica[spec.Workers];
        using var team = Form(spec, out var model, bugAtStep: null, replicas: replicas);
        Task? left = null;

        // Worker 1 leaves while step 5 is being decided on: its grain took a step call, say.
        var window = await team.RunAsync(1, 10, long.MaxValue, step =>
        {
            if (step == 5) left = team.Seats[1].StopAsync();
            return false;
        });

        var failure = Assert.IsType<IOException>(window.Failure);
        Assert.NotEqual(FailureKind.Fatal, Failures.Classify(failure));
        Assert.Contains("worker 1 left the run", failure.Message);
        var expected = Jobs.Local(spec with { Steps = 5 });
        Assert.Equal(expected.Losses, window.Losses);
        await left!.WaitAsync(TestContext.Current.CancellationToken);
        var parameters = new double[expected.Parameters.Length];
        model.CopyParameters(parameters);
        Assert.Equal(expected.Parameters, parameters);
        // The caches were forgotten when the workers joined: the next step through Orleans sends them the parameters.
        Assert.All(replicas, replica => Assert.Equal(-1, replica.StepsApplied));
    }

    [Fact]
    public void AReplicaThatJoinsATeam_LetsGoOfItsCache_WhichIsMadeAgainWhenItIsSentParameters()
    {
        var spec = Spec(2);
        var plan = ExchangePlan.For(spec, factors: false);
        var replica = ShardReplica.Create(spec, plan, 0, Synthetic.Data(spec.Batch, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed), 0);
        var cache = LoadAndStep(replica, spec);
        var team = new StepTeam(1, ServerModel.Create(spec, plan, new ComputeScheduler(1)), spec.Workers, Job, NullLogger.Instance);

        team.Join(0, replica);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        // A whole model's array: the team computes at the server's parameters, so nothing may keep it.
        Assert.False(cache.IsAlive, "the replica still holds its cache after joining the team");
        Assert.Equal(-1, replica.StepsApplied);
        team.Dispose();
        // Out of the team, parameters sent to it are loaded into a new cache, and it steps from there as a replica never in a team does.
        var parameters = InitialParameters.InJobPrecision(spec);
        replica.Load(parameters, 0);
        var (losses, pack) = replica.Compute();
        var fresh = ShardReplica.Create(spec, plan, 0, Synthetic.Data(spec.Batch, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed), 0);
        fresh.Load(parameters, 0);
        var (expectedLosses, expectedPack) = fresh.Compute();
        Assert.Equal(expectedLosses, losses);
        Assert.Equal(expectedPack.Bytes, pack.Bytes);
    }

    [Fact]
    public void ATeamWorkersSteps_WriteTheirPacksIntoOneBuffer_WhereStepsThroughOrleansAlternateTwo()
    {
        var spec = Spec(1);
        var plan = ExchangePlan.For(spec, factors: false);
        var replica = ShardReplica.Create(spec, plan, 0, Synthetic.Data(spec.Batch, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed), 0);
        var parameters = InitialParameters.InJobPrecision(spec);

        var (_, first) = replica.ComputeAt(1, parameters);
        var (_, second) = replica.ComputeAt(2, parameters);
        replica.Load(parameters, 0);
        var (_, third) = replica.Compute();
        replica.Load(parameters, 0);
        var (_, fourth) = replica.Compute();

        // A team adds the packs up before any thread computes the next step's; a message may still be read.
        Assert.Same(first, second);
        Assert.NotSame(third, fourth);
    }

    // NOTE: not inlined, so that no local of the test keeps the cache alive.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference LoadAndStep(ShardReplica replica, TrainingSpec spec)
    {
        var cache = replica.ReceiveBuffer(ParameterLayout.For(spec.Model).Count * sizeof(double));
        replica.Load(InitialParameters.DrawInto(spec, cache), 0);
        replica.Compute();
        return new WeakReference(cache.Bytes);
    }

    [Fact]
    public async Task AWindow_EndsOnlyOnceEveryPartOfItsLastStepIsStepped()
    {
        // The grain reads the parameters as soon as a window ends (an evaluation, a checkpoint): a part that
        // a follower still steps then would be read half done. Here the follower holds the part it claims
        // until the window has ended (or a second has passed); the leader meanwhile steps every other part.
        var spec = Spec(2, OptimizerKind.Adam);
        var held = new HeldFollower();
        using var team = Form(spec, out var model, bugAtStep: null, wrap: inner => new HeldFollowerModel(inner, held));

        held.Window = team.RunAsync(1, 1, long.MaxValue, _ => false);
        var window = await held.Window;

        Assert.Null(window.Failure);
        Assert.True(held.Released, "the follower should have stepped a part");
        Assert.False(held.WindowEndedWhileHeld, "the window ended while the follower was still stepping a part of its step");
        var expected = Jobs.Local(spec with { Steps = 1 });
        var parameters = new double[expected.Parameters.Length];
        model.CopyParameters(parameters);
        Assert.Equal(expected.Parameters, parameters);
    }

    private const string Bug = "injected: the step's arithmetic overflowed";

    private sealed class HeldFollower
    {
        public readonly ManualResetEventSlim FollowerInPart = new();
        public Task<WindowResult>? Window;
        public bool WindowEndedWhileHeld, Released;
    }

    /// <summary>
    /// A server model whose first step part taken by the team's follower (thread trainer-team-1) waits for the
    /// window to end, at most a second, and whose leader (trainer-team-0) steps its parts only once the follower holds one.
    /// </summary>
    private sealed class HeldFollowerModel(ServerModel inner, HeldFollower held) : ServerModel
    {
        public override void ReduceAndStepPart(TensorPayload[] packs, int step, int part)
        {
            if (Thread.CurrentThread.Name == "trainer-team-1" && !held.FollowerInPart.IsSet)
            {
                held.FollowerInPart.Set();
                held.WindowEndedWhileHeld = SpinWait.SpinUntil(() => held.Window?.IsCompleted == true, TimeSpan.FromSeconds(1));
                held.Released = true;
            }
            else if (Thread.CurrentThread.Name == "trainer-team-0") held.FollowerInPart.Wait(TimeSpan.FromSeconds(10));
            inner.ReduceAndStepPart(packs, step, part);
        }

        public override void StepPart(int step, int part) => inner.StepPart(step, part);

        public override bool CachesFollowUpdates => inner.CachesFollowUpdates;
        public override TensorPayload Parameters => inner.Parameters;
        public override TensorPayload Update => inner.Update;
        public override void Load(ModelState? modelState, int stepsCompleted, ISampleRows? inputs) => inner.Load(modelState, stepsCompleted, inputs);
        public override void Begin(int step) => inner.Begin(step);
        public override ValueTask AddAsync(int rank, double[] losses, TensorPayload pack) => inner.AddAsync(rank, losses, pack);
        public override ValueTask<double> CompleteAsync(int step) => inner.CompleteAsync(step);
        public override void ApplyPending() => inner.ApplyPending();
        public override bool SharesParameters => inner.SharesParameters;
        public override int SharedParts => inner.SharedParts;
        public override double AcceptShared(int step, double[][] losses) => inner.AcceptShared(step, losses);
        public override void CopyParameters(Span<double> to) => inner.CopyParameters(to);
        public override ModelState ModelState(bool handOver = false) => inner.ModelState(handOver);
        public override IReadOnlyList<Shard> Ranges => inner.Ranges;
        public override void BuildGradient() => inner.BuildGradient();
        public override TensorPayload GradientRange(int shard) => inner.GradientRange(shard);
        public override void PlaceState(StateTensor tensor, int shard, bool slots, TensorChunk chunk) => inner.PlaceState(tensor, shard, slots, chunk);
    }

    private sealed class FormedTeam(StepTeam team, IShardRun[] seats) : IDisposable
    {
        public IShardRun[] Seats => seats;

        public Task<WindowResult> RunAsync(int firstStep, int maxSteps, long until, Func<int, bool> endsAfter) => team.RunAsync(firstStep, maxSteps, until, endsAfter);

        public void Dispose() => team.Dispose();
    }

    /// <summary>A server model at the initial parameters and a team of workers, each with its replica (worker 1's throws at <paramref name="bugAtStep"/>).</summary>
    private static FormedTeam Form(TrainingSpec spec, out ServerModel model, int? bugAtStep, Dataset? data = null, ShardReplica[]? replicas = null,
        Func<ServerModel, ServerModel>? wrap = null)
    {
        var compute = new ComputeScheduler(2);
        var plan = ExchangePlan.For(spec, factors: false);
        data ??= Synthetic.Data(spec.ResolvedSamples, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed);
        model = ServerModel.Create(spec, plan, compute);
        model.Load(new ModelState(InitialParameters.Float64(spec)), 0, data);
        if (wrap is not null) model = wrap(model);
        var team = new StepTeam(1, model, spec.Workers, Job, NullLogger.Instance);
        replicas ??= new ShardReplica[spec.Workers];
        var seats = new IShardRun[spec.Workers];
        for (int rank = 0; rank < spec.Workers; rank++)
        {
            var shard = plan.Micro.RowsOf(rank, spec.Workers);
            var (first, count) = spec.MiniBatches ? (0, spec.ResolvedSamples) : (shard.Start, shard.Count);
            var replica = ShardReplica.Create(spec, plan, rank, data.Range(first, count), first);
            replica.Load(InitialParameters.InJobPrecision(spec), 0);
            replicas[rank] = replica;
            seats[rank] = team.Join(rank, rank == 1 && bugAtStep is { } bug ? new Buggy(replica, bug) : replica);
        }
        team.Start();
        return new FormedTeam(team, seats);
    }

    /// <summary>A worker's replica whose step <paramref name="bugAtStep"/> throws, as a bug in the step code would.</summary>
    private sealed class Buggy(ShardReplica inner, int bugAtStep) : ShardReplica
    {
        public override int StepsApplied => inner.StepsApplied;

        public override void Load(TensorPayload parameters, int stepsCompleted) => inner.Load(parameters, stepsCompleted);

        public override TensorPayload ReceiveBuffer(int bytes) => inner.ReceiveBuffer(bytes);

        public override void Apply(TensorPayload update) => inner.Apply(update);

        public override (double[] Losses, TensorPayload Pack) Compute() => inner.Compute();

        public override (double[] Losses, TensorPayload Pack) ComputeAt(int step, TensorPayload parameters) =>
            step == bugAtStep ? throw new OverflowException(Bug) : inner.ComputeAt(step, parameters);

        public override void Forget() => inner.Forget();

        public override bool HasFactors => inner.HasFactors;

        public override void PrecomputeOwn() => inner.PrecomputeOwn();
    }
}
