using System.Net;
using Trainer.Core;
using Trainer.Grains;

namespace Trainer.Hosting;

/// <summary>
/// Where one silo listens and which cluster it joins. Bound from configuration section "Silo"
/// (appsettings.json, environment Silo__SiloPort=11112, or --silo-port 11112).
/// </summary>
public sealed class SiloSettings
{
    public const string Section = "Silo";

    /// <summary>
    /// The IP address other silos and clients reach this silo at (its silo and gateway ports, and by
    /// default its workers' link port): an address of this host on the cluster's network.
    /// Default 127.0.0.1: a cluster on one machine. "auto": this host's first IPv4 address on a network
    /// interface that is up, other than loopback (<see cref="HostAddresses.OnNetwork"/>), for a container or a
    /// pod, whose address is known only once it runs.
    /// </summary>
    public string AdvertisedAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// The IP address the silo and gateway ports listen on; empty (default): the advertised address.
    /// 0.0.0.0 listens on every interface (the silo still advertises <see cref="AdvertisedAddress"/>);
    /// a different address of this host fits a NAT that forwards the advertised one to it.
    /// </summary>
    public string? ListenAddress { get; set; }

    /// <summary>The IP address of the primary silo (localhost clustering), whose silo port is <see cref="PrimarySiloPort"/>. Default 127.0.0.1.</summary>
    public string PrimarySiloAddress { get; set; } = "127.0.0.1";

    public string ClusterId { get; set; } = "trainer";
    public string ServiceId { get; set; } = "trainer";

    /// <summary>Silo-to-silo port; silo i of a local cluster uses 11111 + i.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Client gateway port; silo i of a local cluster uses 30000 + i.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>
    /// Silo port of the primary silo, which holds the membership table of localhost clustering.
    /// NOTE: if the primary dies the local cluster is gone; only non-primary silos may fail.
    /// </summary>
    public int PrimarySiloPort { get; set; } = 11111;

    /// <summary>localhost (the default) or redis (membership in Redis: any silo may die).</summary>
    public ClusteringKind Clustering { get; set; } = ClusteringKind.Localhost;

    /// <summary>
    /// host:port of a Redis server. When set, job records and checkpoints are stored there and
    /// survive any silo; when empty they live in silo memory (see README, "What survives what").
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>
    /// The cluster's certificate (docs/operations.md, "TLS and authentication"): a PKCS#12 file (.pfx)
    /// or a PEM certificate; empty (default): no TLS. Every silo and client of a cluster names the same one.
    /// </summary>
    public string? TlsCertificate { get; set; }

    /// <summary>The PEM private key of <see cref="TlsCertificate"/>, when that file does not hold it.</summary>
    public string? TlsKey { get; set; }

    /// <summary>
    /// The password of a .pfx <see cref="TlsCertificate"/> or of an encrypted PEM key; empty: the
    /// environment variable TRAINER_TLS_PASSWORD, else none.
    /// </summary>
    public string? TlsPassword { get; set; }

    /// <summary>The TLS files as trainer-silo's options name them in errors.</summary>
    public ClusterCertificateFiles Tls => new(TlsCertificate, TlsKey, TlsPassword,
        new($"{Section}:{nameof(TlsCertificate)} (--tls-cert)", $"{Section}:{nameof(TlsKey)} (--tls-key)", $"{Section}:{nameof(TlsPassword)} (--tls-password)"));

    /// <summary>
    /// The advertised, listening and primary silo's addresses, checked; throws <see cref="SpecException"/>
    /// naming the setting, its value and what is allowed.
    /// </summary>
    public (IPAddress Advertised, IPAddress Listen, IPAddress Primary) Addresses()
    {
        var advertised = string.Equals(AdvertisedAddress?.Trim(), Auto, StringComparison.OrdinalIgnoreCase)
            ? HostAddresses.OnNetwork() ?? throw new SpecException($"{Section}:{nameof(AdvertisedAddress)}", AdvertisedAddress,
                "allowed: auto only on a host with an IPv4 address on a network interface that is up, other than loopback (this one has none); give the address other silos and clients reach this silo at")
            : Parse(nameof(AdvertisedAddress), AdvertisedAddress, ", or auto (this host's address on its network)");
        if (!HostAddresses.CanAdvertise(advertised))
            throw new SpecException($"{Section}:{nameof(AdvertisedAddress)}", AdvertisedAddress,
                "allowed: the one IP address other silos and clients reach this silo at, e.g. 10.0.0.5 (not 0.0.0.0: listen on every interface with --listen 0.0.0.0)");
        var listen = string.IsNullOrWhiteSpace(ListenAddress) ? advertised : Parse(nameof(ListenAddress), ListenAddress);
        if (!HostAddresses.CanListenOn(listen))
            throw new SpecException($"{Section}:{nameof(ListenAddress)}", listen.ToString(),
                $"allowed: an IP address of this machine, or 0.0.0.0 (every interface); {listen} is not one{(string.IsNullOrWhiteSpace(ListenAddress) ? $" (it is the advertised address: give --listen when the advertised one belongs to a NAT)" : "")}");
        return (advertised, listen, Parse(nameof(PrimarySiloAddress), PrimarySiloAddress));
    }

    /// <summary>The <see cref="AdvertisedAddress"/> that stands for this host's address on its network.</summary>
    public const string Auto = "auto";

    /// <param name="alternatives">What else the setting takes, appended to the error's "allowed" list.</param>
    private static IPAddress Parse(string name, string? value, string alternatives = "") =>
        IPAddress.TryParse(value, out var address) ? address
            : throw new SpecException($"{Section}:{name}", value, $"allowed: an IP address (IPv4 or IPv6), e.g. 127.0.0.2 or 10.0.0.5{alternatives}");
}

public enum ClusteringKind
{
    Localhost,
    Redis,
}
