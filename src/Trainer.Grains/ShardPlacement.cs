using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Trainer.Grains;

/// <summary>
/// Places parameter-server shard k of a job on silo (p + 1 + k) mod S of the S compatible silos in
/// address order (those that also run the job's GEMM kernel: <see cref="JobSilos"/>), p being its parameter server's silo: the shards go round the silos after the
/// server's, which gets one last. That silo already holds the most of the job (the job grain, the
/// server's parameters and gradient, the model state assembled at the end), and a shard is large: a
/// third of a 50M-parameter Adam job's parameters twice and of both moments is ~530 MB.
/// </summary>
/// <remarks>
/// Orleans places a grain on the silo that sends its first message, and a shard's is its server's
/// (it loads the shard; the workers only read what the shard offers after that). A shard lost with its
/// silo fails the step and the job restores its checkpoint: the server loads the shards again, and the
/// same rule over the survivors places them, unless a worker's read of the lost shard's offer came
/// first (it fails, and leaves the new activation on that worker's silo until it is collected).
/// </remarks>
[GenerateSerializer, Immutable, Alias("trainer.shard-placement")]
public sealed class ShardPlacement : PlacementStrategy;

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ShardPlacementAttribute() : PlacementAttribute(new ShardPlacement());

public sealed class ShardPlacementDirector(JobSilos jobs) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = RankPlacementDirector.Ordered(target, context, jobs);
        long shard = target.GrainIdentity.GetIntegerKey(out _);
        // A caller on no compatible silo (none but the server calls a shard): silo k, as a worker of rank k.
        int server = Array.IndexOf(silos, context.LocalSilo);
        return Task.FromResult(silos[(int)((server + 1 + shard) % silos.Length)]);
    }
}
