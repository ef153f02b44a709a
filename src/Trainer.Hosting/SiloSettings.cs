namespace Trainer.Hosting;

/// <summary>
/// Where one silo listens and which cluster it joins. Bound from configuration section "Silo"
/// (appsettings.json, environment Silo__SiloPort=11112, or --silo-port 11112).
/// </summary>
public sealed class SiloSettings
{
    public const string Section = "Silo";

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
}

public enum ClusteringKind
{
    Localhost,
    Redis,
}
