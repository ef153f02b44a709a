using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Trainer.Grains;

/// <summary>
/// Places worker rank r on silo (r mod S) of the S compatible silos in address order, so W workers
/// spread one per silo when W = S. Compatible: able to host the grain and to run the job's GEMM kernel
/// (<see cref="JobSilos"/>). When a silo dies the same rule over the survivors re-places its
/// workers, so nothing has to be told where to go.
/// </summary>
[GenerateSerializer, Immutable, Alias("trainer.rank-placement")]
public sealed class RankPlacement : PlacementStrategy;

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class RankPlacementAttribute() : PlacementAttribute(new RankPlacement());

public sealed class RankPlacementDirector(JobSilos jobs) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = Ordered(target, context, jobs);
        long rank = target.GrainIdentity.GetIntegerKey(out _);
        return Task.FromResult(silos[(int)(rank % silos.Length)]);
    }

    /// <summary>
    /// The silos that can host <paramref name="target"/>, a grain of one job keyed (integer, job id), and run the job's
    /// kernel, in placement order, in an array of their own; fails when there are none.
    /// </summary>
    public static SiloAddress[] Ordered(PlacementTarget target, IPlacementContext context, JobSilos jobs)
    {
        target.GrainIdentity.GetIntegerKey(out string? jobId);
        return Ordered(target, context, jobs, jobId);
    }

    /// <summary>The silos that can host <paramref name="target"/>, a grain of job <paramref name="jobId"/>, and run its kernel, in placement order.</summary>
    public static SiloAddress[] Ordered(PlacementTarget target, IPlacementContext context, JobSilos jobs, string? jobId)
    {
        // NOTE: GetCompatibleSilos hands out an array Orleans caches, which placements running at the same time
        // read too. Sorted in place, a concurrent placement read it half sorted and put a worker or a parameter-server
        // shard on a silo its rule does not name (the shards of one job are placed at once). Running copies it
        // only when it drops a silo, so the copy here stays.
        var compatible = context.GetCompatibleSilos(target);
        if (compatible.Length == 0)
            throw new OrleansException($"No silo can host {target.GrainIdentity}: the cluster has no compatible silo.");
        var silos = (jobId is null ? compatible : jobs.ForJob(jobId, compatible)).ToArray();
        Sort(silos);
        return silos;
    }

    /// <summary>Where <paramref name="silo"/> stands in the placement order of <paramref name="silos"/> (left as it is), or -1.</summary>
    public static int IndexOf(SiloAddress silo, SiloAddress[] silos)
    {
        var ordered = silos.ToArray();
        Sort(ordered);
        return Array.IndexOf(ordered, silo);
    }

    /// <summary>How many of a job's <paramref name="workers"/> ranks land on silo <paramref name="index"/> of <paramref name="silos"/>.</summary>
    public static int RanksOn(int index, int silos, int workers) => workers / silos + (index < workers % silos ? 1 : 0);

    // NOTE: by address, not by age, so a restarted silo takes back the same ranks.
    private static void Sort(SiloAddress[] silos) =>
        Array.Sort(silos, (a, b) => string.CompareOrdinal(a.Endpoint.ToString(), b.Endpoint.ToString()));
}
