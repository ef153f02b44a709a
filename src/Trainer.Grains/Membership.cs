using Orleans.Runtime;

namespace Trainer.Grains;

/// <summary>What Trainer reads of the cluster's membership.</summary>
internal static class Membership
{
    /// <summary>The silos the membership lists as active now (not joining, shutting down or dead).</summary>
    public static SiloAddress[] ActiveSilos(this IClusterMembershipService membership) =>
        [.. membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress)];
}
