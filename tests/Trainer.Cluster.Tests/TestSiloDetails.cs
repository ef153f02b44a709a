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
