using System.Net;
using Orleans.Runtime;

namespace Trainer.Cluster.Tests;

/// <summary>Stands in for a silo whose address is <paramref name="address"/> (loopback by default), for <see cref="Trainer.Grains.WorkerLinks"/> without a silo.</summary>
internal sealed class TestSiloDetails(IPAddress? address = null) : ILocalSiloDetails
{
    public string Name => "test";
    public string ClusterId => "test";
    public string DnsHostName => "localhost";
    public SiloAddress SiloAddress { get; } = SiloAddress.New(new IPEndPoint(address ?? IPAddress.Loopback, 11111), 1);
    public SiloAddress GatewayAddress => SiloAddress;
}

/// <summary>A silo-metadata cache that has learnt nothing yet, for code built outside a silo.</summary>
internal sealed class NoSiloMetadata : Orleans.Runtime.MembershipService.SiloMetadata.ISiloMetadataCache
{
    public Orleans.Runtime.MembershipService.SiloMetadata.SiloMetadata GetSiloMetadata(SiloAddress siloAddress) =>
        Orleans.Runtime.MembershipService.SiloMetadata.SiloMetadata.Empty;
}
