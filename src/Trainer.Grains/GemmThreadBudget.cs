using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Trainer.Core.Linalg;

namespace Trainer.Grains;

/// <summary>
/// How many threads one GEMM may use in this silo: its compute threads (one per core by default)
/// shared among the workers of the job it runs, so one worker alone uses every core and two do not
/// fight over them (<see cref="TrainerOptions.BlasThreads"/> 0); or a fixed count.
/// </summary>
/// <remarks>
/// NOTE: both backends' counts are process-wide, so the last job to load a worker here sets them.
/// Neither moves a job's bits: the managed GEMM gives an element the same operations whatever block
/// and thread it falls in (ManagedBlas), and OpenBLAS runs blocks fixed by the product's shape, each
/// one single-threaded call (GemmBlocks; OpenBLAS's own threads, which cut C by their number and
/// round the pieces' edge tiles differently, never run).
/// </remarks>
public sealed class GemmThreadBudget(ComputeScheduler compute, IOptions<TrainerOptions> options, IClusterMembershipService membership, ILocalSiloDetails silo, JobSilos jobs)
{
    /// <summary>Threads per GEMM: <paramref name="configured"/> when positive, else the compute threads shared among the local workers (at least 1).</summary>
    public static int For(int computeThreads, int configured, int localWorkers) =>
        configured > 0 ? configured : Math.Max(1, computeThreads / Math.Max(1, localWorkers));

    /// <summary>Sizes both backends for a job of <paramref name="workers"/> workers on <paramref name="kernel"/>, placed by <see cref="RankPlacement"/>; returns the count.</summary>
    public int Apply(string? kernel, int workers)
    {
        var silos = jobs.Running(kernel, membership.ActiveSilos());
        int index = RankPlacementDirector.IndexOf(silo.SiloAddress, silos);
        int local = index < 0 ? workers : RankPlacementDirector.RanksOn(index, silos.Length, workers);
        int threads = For(compute.MaximumConcurrencyLevel, options.Value.BlasThreads, local);
        Blas.SetThreads(threads);
        return threads;
    }
}
