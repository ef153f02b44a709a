using System.Net;
using Microsoft.Extensions.Options;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// Cluster-side knobs for running jobs, bound from configuration section "Trainer"
/// (appsettings.json, environment variables Trainer__WorkerRetryBudget=00:01:00, or the command line).
/// Every wait is bounded: a job that cannot make progress fails with a clear status instead of hanging.
/// The timeouts nest (docs/operations.md, "Timeouts"): <see cref="LinkReadTimeout"/> and
/// <see cref="SplitLinkTimeout"/> below <see cref="WorkerCallTimeout"/>, and a worker's retries
/// (<see cref="WorkerRetryBudget"/> + <see cref="WorkerCallTimeout"/>) below the job's call to its
/// parameter server (<see cref="Trainer.Abstractions.CallTimeouts.Long"/>); the silo refuses to start otherwise.
/// </summary>
public sealed class TrainerOptions
{
    public const string Section = "Trainer";

    /// <summary>
    /// How long the parameter server keeps retrying a worker whose silo failed. It must cover the
    /// time Orleans needs to declare a silo dead (probe timeout x missed probes, ~15 s by default),
    /// after which the worker is re-activated on a survivor.
    /// </summary>
    public TimeSpan WorkerRetryBudget { get; set; } = TimeSpan.FromSeconds(90);

    /// <summary>First back-off between retries; doubles each time up to <see cref="MaxRetryBackoff"/>.</summary>
    public TimeSpan RetryBackoff { get; set; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan MaxRetryBackoff { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long one worker call may take before it counts as failed (and is retried): one shard step
    /// of a data-parallel job, or a split job's window of steps, whose first includes linking up
    /// (<see cref="SplitLinkTimeout"/>). Far above any step (the 50M-parameter job's: ~4 s), so it
    /// only catches a hung worker.
    /// </summary>
    public TimeSpan WorkerCallTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// After this long without an answer to a step call, the parameter server asks the worker whether
    /// the call is running (<see cref="Trainer.Abstractions.IWorkerGrain.ProbeAsync"/>), and again each
    /// time this passes. A call the worker does not have running at two probes in a row (never
    /// received, or answered with an answer that never came) was lost on the way and is made again,
    /// instead of waiting out <see cref="WorkerCallTimeout"/>. Two probes, because one may cross the
    /// answer on its way.
    /// </summary>
    public TimeSpan WorkerProbeInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a job keeps restoring its checkpoint and retrying after failed steps without getting
    /// past the furthest step it had reached, before it gives up and fails. Only infrastructure
    /// failures are retried (<see cref="Failures"/>); a bug fails the job at once.
    /// </summary>
    public TimeSpan RecoveryBudget { get; set; } = TimeSpan.FromMinutes(3);

    /// <summary>How often each silo looks for running jobs whose grain was lost with a silo, to resume them.</summary>
    public TimeSpan SupervisorPeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a silo's process in which no job runs any more waits before one full collection gives the
    /// memory its jobs used back to the operating system (<see cref="IdleMemory"/>; the first silo of a
    /// process sets it for all); zero: never.
    /// </summary>
    public TimeSpan IdleCollectionDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Threads one GEMM may use in this silo, in either backend (process-wide); a job's bits do not
    /// depend on it. 0 (default): the compute threads shared among the running job's workers on this
    /// silo (<see cref="GemmThreadBudget"/>), so a lone worker uses every core and two workers one each;
    /// GEMM threads of two workers on the same cores made the seed job 3x slower.
    /// Silos that share a machine with others set 1 (or divide <see cref="ComputeThreads"/>).
    /// </summary>
    public int BlasThreads { get; set; }

    /// <summary>
    /// Dedicated threads for workers' arithmetic in this silo (0 = one per core). Several workers of
    /// one silo compute in parallel on up to this many threads.
    /// </summary>
    public int ComputeThreads { get; set; }

    /// <summary>
    /// How layer gradients travel (see ExchangePlan): Auto sends sufficient factors where they are
    /// smaller once the cluster has more than one silo at the job's start or restore, and dense
    /// gradients in a cluster of one silo (nothing crosses a network there). Results are the same bits either way.
    /// </summary>
    public ExchangeMode Exchange { get; set; } = ExchangeMode.Auto;

    /// <summary>
    /// How a data-parallel job's steps travel between the parameter server and its workers: Auto takes
    /// the links (one TCP connection per worker, <see cref="ServerRunner"/>) once the cluster has more
    /// than one silo at the job's start or restore, and in a cluster of one silo a step team
    /// (<see cref="StepTeam"/>: the workers' threads compute at the server's parameters in place) where
    /// one fits, else Orleans messages. Links asks for links (frames in process on one silo), Messages
    /// for messages. A job whose parameter server is sharded always uses messages. Results are the
    /// same bits every way.
    /// </summary>
    public DataPlane DataPlane { get; set; } = DataPlane.Auto;

    /// <summary>
    /// The parameter server runs steps back to back for up to this long per call from the job grain;
    /// losses, status and cancellation are seen at that granularity (and at every checkpoint).
    /// </summary>
    public TimeSpan StepBatchWindow { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// The same for jobs that split their first layer, whose workers run whole windows of steps
    /// on their own: every window costs a round trip through the parameter server and the job
    /// grain (measured: 1-2.5 ms on the seed job over two silo processes), so it is longer.
    /// Windows never pass a checkpoint.
    /// </summary>
    public TimeSpan SplitStepBatchWindow { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The TCP port on which a silo takes the links between the workers of split jobs that run on
    /// different silos; 0 (default) picks a free port when the first split job starts.
    /// Fix it where a firewall or a pod spec must name it.
    /// </summary>
    public int SplitLinkPort { get; set; }

    /// <summary>
    /// The IP address the link port listens on; empty (default): the silo's advertised address
    /// (Silo:AdvertisedAddress). 0.0.0.0 or :: listens on every interface, and other silos are then
    /// told the advertised address.
    /// </summary>
    public string? SplitLinkAddress { get; set; }

    /// <summary>How long the workers of a run over links may take to link up before the run fails.</summary>
    public TimeSpan SplitLinkTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a worker waits on a link for a peer's block (or for the peer to take its own) before
    /// the window fails as a hung peer and the job restores its checkpoint. Workers link up only once
    /// every one of them is ready, so within a run this need only exceed one step of the slowest
    /// worker (milliseconds for most models, ~1-2 s for the largest measured).
    /// </summary>
    public TimeSpan LinkReadTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How many connections the link port holds that no worker has claimed yet (waiting for their
    /// hello, or for their worker): the oldest is closed to make room for a new one. A run needs at
    /// most one per pair of its workers on different silos for a moment; the cap keeps a flood of
    /// connections from using up the silo's file handles. Each also closes after <see cref="SplitLinkTimeout"/>.
    /// </summary>
    public int MaxUnclaimedLinks { get; set; } = 256;

    /// <summary>
    /// How long Orleans' silo port and gateway wait for a new connection's preamble (who is calling,
    /// after the TLS handshake in a TLS cluster) before closing it; zero: no limit. Orleans' own side
    /// gives up opening a connection after 5 s (ConnectionOptions.OpenConnectionTimeout), so a silo or
    /// client still waiting then has given up, and one that kept the connection idle costs a file handle.
    /// </summary>
    public TimeSpan InboundPreambleTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many connections each of Orleans' ports (silo, gateway) holds that have not sent their
    /// preamble; one beyond is closed at once; 0: no cap. Silos and clients send theirs as they connect,
    /// so only a flood fills it.
    /// </summary>
    public int MaxPendingInboundConnections { get; set; } = 256;

    /// <summary>
    /// Most bytes one job may upload ahead of its submission (initial parameters and samples
    /// together, float64 as they travel), checked before anything is allocated. Default 4 GiB
    /// (the full Fashion-MNIST training set is 376 MB; a 50M-parameter model's initial weights 400 MB).
    /// </summary>
    public long MaxUploadBytesPerJob { get; set; } = 4L << 30;

    /// <summary>
    /// Most bytes of uploads a silo holds for submissions not made yet, over all its jobs (whose ids
    /// the clients choose), checked before anything is allocated; 0 (default): half the memory .NET
    /// may use in the silo's process. An upload refused for it may be retried once others are submitted.
    /// </summary>
    public long MaxStagedBytesPerSilo { get; set; }

    /// <summary>
    /// Absolute folders under which a job whose data stays on the silos (<c>--data-on-silos</c>) may have
    /// this silo read its files (`--Trainer:DataRoots:0=/srv/data`); empty (default): any path the silo's
    /// process can read. NOTE: a client that may submit jobs may otherwise make the silo open any file it
    /// can read as data; a root is compared after resolving "..", not symbolic links.
    /// </summary>
    public string[] DataRoots { get; set; } = [];

    /// <summary>
    /// Losses per stored chunk of a job's loss history (at least 1; fixed for a job when it is
    /// submitted). The job's record, rewritten at every checkpoint, keeps only the losses after the
    /// last full chunk, so a checkpoint writes the same amount at step 300,000 as at step 300.
    /// </summary>
    public int LossChunkSteps { get; set; } = StoredLosses.DefaultChunkSteps;
}

/// <summary>Refuses settings no job could run with, when the silo starts (naming the setting, its value and what is allowed).</summary>
public sealed class TrainerOptionsValidation : IValidateOptions<TrainerOptions>
{
    public ValidateOptionsResult Validate(string? name, TrainerOptions options)
    {
        var errors = Errors(options).ToList();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static IEnumerable<string> Errors(TrainerOptions o)
    {
        if (o.BlasThreads < 0)
            yield return $"{Key(nameof(o.BlasThreads))} is {o.BlasThreads}; it must be 0 (the silo's cores shared among its workers) or more (threads of each product).";
        if (o.LossChunkSteps < 1)
            yield return $"{Key(nameof(o.LossChunkSteps))} is {o.LossChunkSteps}; it must be at least 1 (losses per stored chunk of a job's loss history).";
        if (!string.IsNullOrWhiteSpace(o.SplitLinkAddress) && !(IPAddress.TryParse(o.SplitLinkAddress, out var linkAddress) && HostAddresses.CanListenOn(linkAddress)))
            yield return $"{Key(nameof(o.SplitLinkAddress))}: '{o.SplitLinkAddress}' is not allowed; allowed: an IP address of this machine, or 0.0.0.0 (every interface), or empty for the silo's advertised address.";
        if (o.MaxUploadBytesPerJob < 1)
            yield return $"{Key(nameof(o.MaxUploadBytesPerJob))} is {o.MaxUploadBytesPerJob}; it must be at least 1 (bytes a job may upload ahead of its submission).";
        if (o.MaxStagedBytesPerSilo < 0)
            yield return $"{Key(nameof(o.MaxStagedBytesPerSilo))} is {o.MaxStagedBytesPerSilo}; it must be 0 (half the memory .NET may use) or more (bytes of uploads a silo holds for submissions not made yet).";
        foreach (var root in o.DataRoots.Where(r => !Path.IsPathFullyQualified(r)))
            yield return $"{Key(nameof(o.DataRoots))}: '{root}' is not allowed; allowed: absolute folders (a relative one would depend on the silo's working directory).";
        if (o.MaxUnclaimedLinks < 1)
            yield return $"{Key(nameof(o.MaxUnclaimedLinks))} is {o.MaxUnclaimedLinks}; it must be at least 1 (connections the link port holds for their worker).";
        if (o.MaxPendingInboundConnections < 0)
            yield return $"{Key(nameof(o.MaxPendingInboundConnections))} is {o.MaxPendingInboundConnections}; it must be 0 (no cap) or more (connections each of Orleans' ports holds before their preamble).";
        if (o.InboundPreambleTimeout < TimeSpan.Zero)
            yield return $"{Key(nameof(o.InboundPreambleTimeout))} is {o.InboundPreambleTimeout}; it must be 00:00:00 (no limit) or a positive time span (hh:mm:ss).";
        (string Name, TimeSpan Value)[] spans = [(nameof(o.LinkReadTimeout), o.LinkReadTimeout), (nameof(o.SplitLinkTimeout), o.SplitLinkTimeout),
            (nameof(o.WorkerCallTimeout), o.WorkerCallTimeout), (nameof(o.WorkerRetryBudget), o.WorkerRetryBudget), (nameof(o.RecoveryBudget), o.RecoveryBudget)];
        foreach (var (option, value) in spans.Where(s => s.Value <= TimeSpan.Zero))
            yield return $"{Key(option)} is {value}; it must be a positive time span (hh:mm:ss).";
        if (o.WorkerProbeInterval >= o.WorkerCallTimeout)
            yield return Below(nameof(o.WorkerProbeInterval), o.WorkerProbeInterval, nameof(o.WorkerCallTimeout), o.WorkerCallTimeout, "a lost call is found by probing before the call times out");
        if (o.LinkReadTimeout >= o.WorkerCallTimeout)
            yield return Below(nameof(o.LinkReadTimeout), o.LinkReadTimeout, nameof(o.WorkerCallTimeout), o.WorkerCallTimeout, "a hung link peer must fail its window before the call running the window times out");
        if (o.SplitLinkTimeout >= o.WorkerCallTimeout)
            yield return Below(nameof(o.SplitLinkTimeout), o.SplitLinkTimeout, nameof(o.WorkerCallTimeout), o.WorkerCallTimeout, "a run's first window links its workers up within one worker call");
        // The parameter server answers the job, even after retrying a worker for its whole budget, before the job's call to it times out.
        if (o.WorkerRetryBudget + o.WorkerCallTimeout >= CallTimeouts.LongSpan)
            yield return $"{Key(nameof(o.WorkerRetryBudget))} ({o.WorkerRetryBudget}) + {Key(nameof(o.WorkerCallTimeout))} ({o.WorkerCallTimeout}) must stay below {CallTimeouts.LongSpan}: "
                + "a job's call to its parameter server times out then, and the parameter server may retry a worker that long.";
    }

    private static string Key(string option) => $"{TrainerOptions.Section}:{option}";

    private static string Below(string option, TimeSpan value, string bound, TimeSpan limit, string why) =>
        $"{Key(option)} ({value}) must be below {Key(bound)} ({limit}): {why}.";
}

/// <summary><see cref="TrainerOptions.DataPlane"/>.</summary>
public enum DataPlane
{
    Auto,
    Messages,
    Links,
}

/// <summary><see cref="TrainerOptions.Exchange"/>.</summary>
public enum ExchangeMode
{
    Auto,
    Dense,
    Factors,
}

