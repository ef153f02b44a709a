using System.Net;
using Orleans.Runtime;
using Orleans.Runtime.Placement;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Where the placement directors put workers (rank r on silo r mod S in address order) and parameter-server
/// shards (shard k on silo (p + 1 + k) mod S, p the server's), and that they never reorder the silo array
/// Orleans hands them: Orleans caches it, and placements running at once read it.
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

    private static PlacementTarget Target(string type, long key) =>
        new(GrainId.Create(GrainType.Create(type), GrainIdKeyExtensions.CreateIntegerKey(key, "job-1")), new Dictionary<string, object>(), default, 0);

    [Fact]
    public async Task Workers_GoToSiloRankModS_InAddressOrder_AndTheSiloArrayIsLeftAsOrleansGaveIt()
    {
        SiloAddress[] cached = [A, B, C];

        var placed = await PlaceAsync(new RankPlacementDirector(), new RankPlacement(), "worker", 5, new Context(A, cached));

        Assert.Equal([B, C, A, B, C], placed);
        Assert.Equal([A, B, C], cached);
    }

    [Fact]
    public async Task Shards_GoRoundTheSilosAfterTheServers_AndTheSiloArrayIsLeftAsOrleansGaveIt()
    {
        SiloAddress[] cached = [A, B, C];

        // The server on c, second by address: shard 0 on a, 1 on b, 2 on c (its own silo gets one last).
        var placed = await PlaceAsync(new ShardPlacementDirector(), new ShardPlacement(), "parametershard", 3, new Context(C, cached));

        Assert.Equal([A, B, C], placed);
        Assert.Equal([A, B, C], cached);
    }

    /// <summary>Grains 0..count-1 of <paramref name="type"/> placed at once, as a job's workers or shards are.</summary>
    private static async Task<SiloAddress[]> PlaceAsync(IPlacementDirector director, PlacementStrategy strategy, string type, int count, IPlacementContext context) =>
        await Task.WhenAll(Enumerable.Range(0, count).Select(k => director.OnAddActivation(strategy, Target(type, k), context)));

    [Fact]
    public void IndexOf_FindsASiloInAddressOrder_LeavingTheArrayAsGiven()
    {
        SiloAddress[] silos = [A, B, C];

        Assert.Equal([2, 0, 1], new[] { A, B, C }.Select(s => RankPlacementDirector.IndexOf(s, silos)));
        Assert.Equal(-1, RankPlacementDirector.IndexOf(Silo(11114), silos));
        Assert.Equal([A, B, C], silos);
    }
}
