using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Trainer.Grains;

/// <summary>
/// Places a job's parameter server on the silo that calls it first, its job grain's, as Orleans'
/// PreferLocalPlacement does: the server and the job grain exchange every checkpoint and the final
/// model. Unless that silo cannot run the job's GEMM kernel (<see cref="JobSilos"/>): then on the first
/// silo in address order that can.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.server-placement")]
public sealed class ServerPlacement : PlacementStrategy;

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ServerPlacementAttribute() : PlacementAttribute(new ServerPlacement());

public sealed class ServerPlacementDirector(JobSilos jobs) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        // The parameter server's key is its job's id.
        var silos = RankPlacementDirector.Ordered(target, context, jobs, target.GrainIdentity.Key.ToString());
        return Task.FromResult(Array.IndexOf(silos, context.LocalSilo) >= 0 ? context.LocalSilo : silos[0]);
    }
}
