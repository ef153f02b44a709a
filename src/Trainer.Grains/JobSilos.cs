using System.Collections.Concurrent;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Trainer.Core.Linalg;

namespace Trainer.Grains;

/// <summary>
/// The silos that can compute a job: those that run its GEMM kernel (<see cref="Trainer.Core.Training.TrainingSpec.Gemm"/>), as
/// each published it (<see cref="GemmKernels"/>). That narrows a job where a silo that cannot run its kernel joined
/// after it was submitted (a job on an OpenBLAS kernel, or on managed with a silo without FMA), or where no kernel
/// runs on every silo (silos with FMA and without: <see cref="Blas.ForJob"/>). Placement (workers,
/// parameter-server shards, the parameter server) and the GEMM thread budget read the same narrowed list,
/// so a silo sizes its GEMMs by the workers placed on it. The parameter server's choice of a one-silo step
/// team still counts every silo: a team needs every worker beside it, which only one silo in the cluster assures.
/// </summary>
/// <remarks>
/// A placement director sees only the grain's id, so every silo that may place a job's grains remembers the job's
/// kernel here when one of them loads its spec: the job grain's (it places the parameter server), the parameter
/// server's (workers and shards), and those of the workers and shards, since a silo that leaves forwards its grains'
/// pending messages and that places them again from there. The job grain and the parameter server forget it when
/// the job ends; elsewhere the cap below bounds what stays. A job this silo does not know, or whose kernel no silo runs, is placed
/// on every silo, as before kernels narrowed placement: a worker then fails the job, naming both kernels.
/// </remarks>
public sealed class JobSilos
{
    // NOTE: entries are tens of bytes; the cap only bounds a long-lived silo's map. A job forgotten early is
    // remembered again when one of its grains here next loads its spec.
    private const int MaxRemembered = 10_000;

    private readonly Func<SiloAddress, IReadOnlyCollection<string>?> _published;
    private readonly ConcurrentDictionary<string, string> _kernels = new(StringComparer.Ordinal);

    public JobSilos(ISiloMetadataCache metadata, ILocalSiloDetails local)
        : this(silo => silo.Equals(local.SiloAddress) ? Blas.Kernels : GemmKernels.Published(metadata, silo))
    {
    }

    /// <param name="published">The kernels a silo runs; null while this silo has not learnt them (it is then used for no job whose kernel is known).</param>
    internal JobSilos(Func<SiloAddress, IReadOnlyCollection<string>?> published) => _published = published;

    /// <summary>The kernels <paramref name="silo"/> runs, as this silo knows them (its own: <see cref="Blas.Kernels"/>); null while it has not learnt them.</summary>
    public IReadOnlyCollection<string>? KernelsOf(SiloAddress silo) => _published(silo);

    /// <summary>Keeps <paramref name="kernel"/> as job <paramref name="jobId"/>'s, for placing its grains from this silo.</summary>
    public void Remember(string jobId, string? kernel)
    {
        if (kernel is null)
        {
            Forget(jobId);
            return;
        }
        if (_kernels.Count >= MaxRemembered && !_kernels.ContainsKey(jobId)) _kernels.Clear();
        _kernels[jobId] = kernel;
    }

    /// <summary>Forgets job <paramref name="jobId"/> (it has ended).</summary>
    public void Forget(string jobId) => _kernels.TryRemove(jobId, out _);

    /// <summary>The kernel remembered for job <paramref name="jobId"/>; null when none is.</summary>
    public string? KernelOf(string jobId) => _kernels.TryGetValue(jobId, out var kernel) ? kernel : null;

    /// <summary>
    /// Those of <paramref name="silos"/> that run <paramref name="kernel"/>, in their order; all of them when the kernel is
    /// null, or when none runs it (the job then fails where it lands, naming both kernels).
    /// </summary>
    public SiloAddress[] Running(string? kernel, SiloAddress[] silos)
    {
        if (kernel is null) return silos;
        var running = Array.FindAll(silos, silo => KernelsOf(silo)?.Contains(kernel) == true);
        return running.Length > 0 ? running : silos;
    }

    /// <summary><see cref="Running"/> for job <paramref name="jobId"/>'s remembered kernel.</summary>
    public SiloAddress[] ForJob(string jobId, SiloAddress[] silos) => Running(KernelOf(jobId), silos);
}
