using System.Net;
using Orleans.Runtime;
using Orleans.Runtime.Placement;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Where the placement directors put workers (rank r on silo r mod S in address order), parameter-server
/// shards (shard k on silo (p + 1 + k) mod S, p the server's) and parameter servers (the caller's silo), among
/// the S silos that run the job's GEMM kernel; and that they never reorder the silo array Orleans hands them:
/// Orleans caches it, and placements running at once read it.
/// </summary>
public sealed class PlacementDirectorTests
{
    // Not in address order, as Orleans may list them; by address: b (:11111), c (:11112), a (:11113).
    private static readonly SiloAddress A = Silo(11113), B = Silo(11111), C = Silo(11112);

    private static SiloAddress Silo(int port) => SiloAddress.New(new IPEndPoint(IPAddress.Loopback, port), 1);

    private sealed class Context(SiloAddress local, SiloAddress[] silos) : IPlacementContext
    {
        public SiloAddress[] GetCompatibleSilos(PlacementTarget target) => silos;

        public IReadOnlyDictionary<ushort, SiloAddress[]> GetCompatibleSilosWithVersions(PlacementTarget target) => new Dictionary<ushort, SiloAddress[]> { [0] = silos };

        public SiloAddress LocalSilo => local;

        public SiloStatus LocalSiloStatus => SiloStatus.Active;
    }

    private const string OpenBlasKernel = "openblas 0.3.21 Haswell";

    // Every silo runs the managed kernel; a and b also run OpenBLAS's Haswell kernel, c (a later CPU, or TRAINER_BLAS=managed) does not.
    private static IReadOnlyCollection<string>? Published(SiloAddress silo) =>
        silo.Equals(C) ? ["managed"] : silo.Equals(A) || silo.Equals(B) ? [OpenBlasKernel, "managed"] : null;

    private static readonly JobSilos NoJobs = new(Published);

    private static PlacementTarget Target(string type, long key, string job = "job-1") =>
        new(GrainId.Create(GrainType.Create(type), GrainIdKeyExtensions.CreateIntegerKey(key, job)), new Dictionary<string, object>(), default, 0);

    private static PlacementTarget ServerTarget(string job) =>
        new(GrainId.Create(GrainType.Create("parameterserver"), job), new Dictionary<string, object>(), default, 0);

    [Fact]
    public async Task Workers_GoToSiloRankModS_InAddressOrder_AndTheSiloArrayIsLeftAsOrleansGaveIt()
    {
        SiloAddress[] cached = [A, B, C];

        var placed = await PlaceAsync(new RankPlacementDirector(NoJobs), new RankPlacement(), "worker", 5, new Context(A, cached));

        Assert.Equal([B, C, A, B, C], placed);
        Assert.Equal([A, B, C], cached);
    }

    [Fact]
    public async Task Shards_GoRoundTheSilosAfterTheServers_AndTheSiloArrayIsLeftAsOrleansGaveIt()
    {
        SiloAddress[] cached = [A, B, C];

        // The server on c, second by address: shard 0 on a, 1 on b, 2 on c (its own silo gets one last).
        var placed = await PlaceAsync(new ShardPlacementDirector(NoJobs), new ShardPlacement(), "parametershard", 3, new Context(C, cached));

        Assert.Equal([A, B, C], placed);
        Assert.Equal([A, B, C], cached);
    }

    [Fact]
    public async Task AJobOnAnOpenBlasKernel_PlacesItsWorkersAndShards_OnlyOnSilosThatRunIt_InTheSameOrder()
    {
        var jobs = new JobSilos(Published);
        jobs.Remember("job-1", OpenBlasKernel);
        SiloAddress[] cached = [A, B, C];

        // By address b, c, a; c cannot run the kernel: rank r on silo r mod 2 of (b, a).
        var workers = await PlaceAsync(new RankPlacementDirector(jobs), new RankPlacement(), "worker", 5, new Context(A, cached));
        // The server on a, second of (b, a): shard 0 on b, shard 1 on a.
        var shards = await PlaceAsync(new ShardPlacementDirector(jobs), new ShardPlacement(), "parametershard", 2, new Context(A, cached));
        // Another job, not remembered here, still uses every silo.
        var other = await PlaceAsync(new RankPlacementDirector(jobs), new RankPlacement(), "worker", 3, new Context(A, cached), "job-2");

        Assert.Equal([B, A, B, A, B], workers);
        Assert.Equal([B, A], shards);
        Assert.Equal([B, C, A], other);
        Assert.Equal([A, B, C], cached);
    }

    [Fact]
    public async Task AJobOnAKernelEverySiloRuns_OrOnOneNoSiloRuns_UsesEverySilo()
    {
        var jobs = new JobSilos(Published);
        jobs.Remember("managed-job", "managed");
        jobs.Remember("lost-kernel-job", "openblas 0.3.21 SkylakeX");
        SiloAddress[] cached = [A, B, C];

        // No silo runs SkylakeX: placed as before kernels narrowed placement, where its workers fail the job naming both kernels.
        foreach (var job in new[] { "managed-job", "lost-kernel-job" })
            Assert.Equal([B, C, A], await PlaceAsync(new RankPlacementDirector(jobs), new RankPlacement(), "worker", 3, new Context(A, cached), job));
    }

    [Fact]
    public async Task AForgottenJob_UsesEverySiloAgain()
    {
        var jobs = new JobSilos(Published);
        jobs.Remember("job-1", OpenBlasKernel);
        jobs.Forget("job-1");

        Assert.Null(jobs.KernelOf("job-1"));
        Assert.Equal([B, C, A], await PlaceAsync(new RankPlacementDirector(jobs), new RankPlacement(), "worker", 3, new Context(A, [A, B, C])));
    }

    [Fact]
    public async Task AParameterServer_GoesToItsCallersSilo_UnlessThatSiloCannotRunItsKernel_ThenToTheFirstThatCan()
    {
        var jobs = new JobSilos(Published);
        jobs.Remember("openblas-job", OpenBlasKernel);
        SiloAddress[] cached = [A, B, C];
        var director = new ServerPlacementDirector(jobs);

        // Called from c (its job grain there), which cannot run the kernel: b, first by address of (b, a).
        Assert.Equal(B, await director.OnAddActivation(new ServerPlacement(), ServerTarget("openblas-job"), new Context(C, cached)));
        // From a, which can: a, beside its job grain.
        Assert.Equal(A, await director.OnAddActivation(new ServerPlacement(), ServerTarget("openblas-job"), new Context(A, cached)));
        // A job this silo does not know (nor does any placement here) keeps its server beside its job grain.
        Assert.Equal(C, await director.OnAddActivation(new ServerPlacement(), ServerTarget("unknown-job"), new Context(C, cached)));
        Assert.Equal([A, B, C], cached);
    }

    [Fact]
    public async Task AJobOnTheManagedKernel_SkipsASiloWithoutFma_WhoseManagedKernelRoundsDifferently()
    {
        var withoutFma = Silo(11110);
        var jobs = new JobSilos(silo => silo.Equals(withoutFma) ? ["managed without FMA"] : Published(silo));
        jobs.Remember("job-1", "managed");

        // By address: the silo without FMA (:11110) first, then b, c, a.
        Assert.Equal([B, C, A, B], await PlaceAsync(new RankPlacementDirector(jobs), new RankPlacement(), "worker", 4, new Context(A, [A, withoutFma, B, C])));
    }

    [Fact]
    public void ASiloWhoseKernelsAreNotKnownYet_IsNotUsedForAJobOnAKernel_UntilItPublishesThem()
    {
        var jobs = new JobSilos(Published);
        var joining = Silo(11110);

        Assert.Equal([A, B], jobs.Running(OpenBlasKernel, [A, joining, B]));
        Assert.Equal([A, B], jobs.Running("managed", [A, joining, B]));
        Assert.Equal([A, joining, B], jobs.Running(null, [A, joining, B]));
    }

    /// <summary>Grains 0..count-1 of <paramref name="type"/> placed at once, as a job's workers or shards are.</summary>
    private static async Task<SiloAddress[]> PlaceAsync(IPlacementDirector director, PlacementStrategy strategy, string type, int count, IPlacementContext context, string job = "job-1") =>
        await Task.WhenAll(Enumerable.Range(0, count).Select(k => director.OnAddActivation(strategy, Target(type, k, job), context)));

    [Fact]
    public void IndexOf_FindsASiloInAddressOrder_LeavingTheArrayAsGiven()
    {
        SiloAddress[] silos = [A, B, C];

        Assert.Equal([2, 0, 1], new[] { A, B, C }.Select(s => RankPlacementDirector.IndexOf(s, silos)));
        Assert.Equal(-1, RankPlacementDirector.IndexOf(Silo(11114), silos));
        Assert.Equal([A, B, C], silos);
    }
}
