using Orleans.Runtime;

namespace Trainer.Dashboard;

/// <summary>
/// One silo as the cluster's membership table records it, a row of GET /api/silos: its silo
/// endpoint and generation (a restarted silo is a new generation on the same endpoint), status
/// ("active", "joining", "shuttingdown", "stopping", "dead"), gateway port, whether it is the
/// silo serving this dashboard, and the GEMM kernels it runs a job's products on (its own first, then
/// managed; null where this silo has not learnt them, e.g. a dead silo's).
/// </summary>
public sealed record SiloView(string Address, int Generation, string Name, string Status, string HostName, int GatewayPort,
    DateTime StartedAt, DateTime LastAliveAt, bool Self, IReadOnlyList<string>? GemmKernels)
{
    public static SiloView Of(MembershipEntry e, SiloAddress self, IReadOnlyList<string>? kernels) => new(
        e.SiloAddress.Endpoint.ToString(), e.SiloAddress.Generation, e.SiloName, JobStatusView.Lower(e.Status), e.HostName, e.ProxyPort,
        e.StartTime, e.IAmAliveTime, e.SiloAddress.Equals(self), kernels);
}
