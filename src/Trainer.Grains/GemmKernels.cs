using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Trainer.Core.Linalg;

namespace Trainer.Grains;

/// <summary>
/// Which GEMM kernel a job computes on, decided once when it is submitted and kept in its spec and
/// checkpoints: the kernel of the silo it is submitted on when every active silo runs that kernel to
/// the bit, else the managed one, else the one most silos run (<see cref="Blas.ForJob"/>; the job's grains
/// then go only to silos that run it, <see cref="JobSilos"/>). Each silo publishes the kernels it runs
/// (<see cref="Blas.Kernels"/>) as its Orleans silo metadata, which every silo caches as silos join.
/// So on a cluster of mixed CPUs, OpenBLAS builds or TRAINER_BLAS settings a job's bits do not depend
/// on which silos its workers and parameter server land on, and equal a single process's on the same kernel.
/// </summary>
public sealed class GemmKernels(JobSilos jobs, IClusterMembershipService membership, ILocalSiloDetails silo, ILogger<GemmKernels> logger)
{
    /// <summary>The silo metadata key: the kernels the silo runs, separated by <see cref="Separator"/>.</summary>
    public const string MetadataKey = "trainer.gemm";
    private const char Separator = ';';

    // NOTE: a silo's metadata reaches the others' caches a moment after it joins (one call to it); a job
    // submitted in that moment waits for it rather than decide without that silo.
    private static readonly TimeSpan MetadataWait = TimeSpan.FromSeconds(10);

    /// <summary>This process's silo metadata: the kernels it runs.</summary>
    public static Dictionary<string, string> Metadata() => new() { [MetadataKey] = string.Join(Separator, Blas.Kernels) };

    /// <summary>
    /// The kernel for a job submitted here now; <paramref name="resumed"/>: the kernel of the job it resumes,
    /// kept when the cluster runs it (null: the job it resumes computed on each process's own, as this one's does).
    /// </summary>
    public async Task<string> ForJobAsync(string? resumed = null)
    {
        string own = resumed ?? Blas.Kernel(Blas.Default);
        var others = membership.ActiveSilos().Where(s => !s.Equals(silo.SiloAddress)).ToArray();
        var waited = Stopwatch.StartNew();
        IReadOnlyCollection<string>?[] kernels;
        while ((kernels = [.. others.Select(jobs.KernelsOf)]).Any(k => k is null) && waited.Elapsed < MetadataWait)
            await Task.Delay(TimeSpan.FromMilliseconds(50));
        var unknown = others.Where((_, i) => kernels[i] is null).ToArray();
        // NOTE: a silo that never published its kernels (it does not answer) is taken to run this one's, as every silo did
        // before kernels were chosen per job; the job's workers there would fail, naming both, if it does not.
        if (unknown.Length > 0)
            logger.LogWarning("Silos {Silos} did not publish their GEMM kernels within {Wait} s; taking them to run this silo's ({Kernel})",
                string.Join(", ", unknown.Select(s => s.ToParsableString())), MetadataWait.TotalSeconds, own);
        return Blas.ForJob(own, [Blas.Kernels, .. kernels.Select(k => k ?? [own])]);
    }

    /// <summary>The kernels <paramref name="other"/> published, as this silo has cached them; null while it has not.</summary>
    public static string[]? Published(ISiloMetadataCache metadata, SiloAddress other) =>
        metadata.GetSiloMetadata(other).Metadata.TryGetValue(MetadataKey, out var value) ? value.Split(Separator) : null;
}
