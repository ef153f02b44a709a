using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Trainer.Grains;

/// <summary>
/// Places a grain on the OLDEST live silo (lowest generation, then address). Used for job grains
/// and the job registry: in a localhost cluster the oldest silo is the primary, which holds the
/// membership table, so its loss ends the cluster anyway; putting the job there means losing any
/// other silo only ever costs workers, which are recomputed. In a cluster on a real membership
/// store any silo may die: the job then resumes on the next oldest from its latest checkpoint.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.oldest-silo-placement")]
public sealed class OldestSiloPlacement : PlacementStrategy;

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class OldestSiloPlacementAttribute() : PlacementAttribute(new OldestSiloPlacement());

public sealed class OldestSiloPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target);
        if (silos.Length == 0)
            throw new OrleansException($"No silo can host {target.GrainIdentity}: the cluster has no compatible silo.");
        var oldest = silos
            .OrderBy(s => s.Generation)
            .ThenBy(s => s.ToParsableString(), StringComparer.Ordinal)
            .First();
        return Task.FromResult(oldest);
    }
}
