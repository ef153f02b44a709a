namespace Trainer.Core.Linalg;

/// <summary>Which GEMM implementation to use.</summary>
public enum BlasBackend
{
    /// <summary>
    /// OpenBLAS when it loads and runs a kernel for this CPU; managed when it is missing, or when it
    /// fell back to its generic kernel on a CPU the managed kernel can use fully (see <see cref="Blas.Create"/>).
    /// </summary>
    Auto,
    OpenBlas,
    Managed,
}

/// <summary>
/// Chooses the process's GEMM backend. The environment variable <c>TRAINER_BLAS</c>
/// (<c>auto</c>, <c>openblas</c>, <c>managed</c>) overrides the default, <c>auto</c>.
/// </summary>
public static class Blas
{
    public const string EnvironmentVariable = "TRAINER_BLAS";

    private static readonly Lazy<IBlas> DefaultBackend = new(() => Create(FromEnvironment()));
    private static readonly Lazy<OpenBlas?> System = new(() => OpenBlas.TryLoad(out _));

    /// <summary>The backend chosen from <c>TRAINER_BLAS</c>, created once per process.</summary>
    public static IBlas Default => DefaultBackend.Value;

    /// <summary>The system OpenBLAS, or null when it is not installed.</summary>
    public static OpenBlas? SystemOpenBlas => System.Value;

    /// <summary>"openblas (Haswell kernel)" or "managed", for logs.</summary>
    public static string Describe(IBlas blas) => blas switch
    {
        OpenBlas openBlas => $"openblas ({openBlas.CoreName} kernel)",
        ManagedBlas when SystemOpenBlas is { } o && IsGenericFallback(o) => "managed (OpenBLAS is installed but would run its generic Prescott kernel on this CPU)",
        ManagedBlas when SystemOpenBlas is { } o && IsNarrowerThanCpu(o) => $"managed (OpenBLAS is installed but would run its {o.CoreName} kernel, without the CPU's 512-bit vectors)",
        ManagedBlas => ManagedKernelHere,
        _ => blas.Name,
    };

    /// <summary>
    /// Threads one GEMM may use, in both backends: the process's managed GEMM (<see cref="Managed"/>)
    /// and OpenBLAS (process-wide). 1 keeps each GEMM on its caller's thread.
    /// </summary>
    public static void SetThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Volatile.Write(ref _threads, threads);
        SystemOpenBlas?.SetThreads(threads);
        if (Default is ManagedBlas managed) managed.SetThreads(threads);
        if (OwnManaged.IsValueCreated) OwnManaged.Value.SetThreads(threads);
    }

    private static int _threads = 1;
    private static readonly Lazy<ManagedBlas> OwnManaged = new(() =>
    {
        var managed = new ManagedBlas();
        managed.SetThreads(Volatile.Read(ref _threads));
        return managed;
    });

    /// <summary>
    /// The label of the managed kernel where the CPU fuses multiply-adds (x86-64 with FMA, which every AVX2 CPU has;
    /// ARM64): the same bits on every such CPU, whatever its vector width.
    /// </summary>
    public const string ManagedKernel = "managed";

    /// <summary>
    /// The label of the managed kernel on an x86-64 CPU without FMA (x86-64-v2: a CPU older than AVX2, or a virtual
    /// machine whose CPU model hides it). There .NET rounds a·b + c twice, in the products and inside TensorPrimitives'
    /// exp and log alike, so its bits differ from <see cref="ManagedKernel"/>'s.
    /// </summary>
    public const string UnfusedManagedKernel = "managed without FMA";

    /// <summary>The label of this process's managed kernel: <see cref="ManagedKernel"/>, or <see cref="UnfusedManagedKernel"/> without FMA.</summary>
    public static string ManagedKernelHere =>
        global::System.Runtime.Intrinsics.X86.Fma.IsSupported || global::System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? ManagedKernel : UnfusedManagedKernel;

    /// <summary>
    /// The kernel <paramref name="blas"/> runs, as a job records it: "managed" ("managed without FMA" on a CPU
    /// without it), or "openblas 0.3.21 Haswell" (release and CPU kernel: either may round a product
    /// differently). Two backends with one label give the same bits.
    /// </summary>
    public static string Kernel(IBlas blas) => blas switch
    {
        OpenBlas openBlas => $"openblas {openBlas.Version} {openBlas.CoreName}",
        _ => ManagedKernelHere,
    };

    /// <summary>
    /// The kernels this process runs a job's products on to the bit: its own (<see cref="Default"/>) and its
    /// managed one (<see cref="ManagedKernelHere"/>). Not OpenBLAS where <c>TRAINER_BLAS</c> or <c>auto</c> chose
    /// managed: what the silo's operator chose stands, and a job then computes on managed (<see cref="ForJob"/>).
    /// </summary>
    public static IReadOnlyList<string> Kernels => Default is ManagedBlas ? [ManagedKernelHere] : [Kernel(Default), ManagedKernelHere];

    /// <summary>The managed backend: <see cref="Default"/> when it is the managed one, else one of its own, sized by <see cref="SetThreads"/> too.</summary>
    public static ManagedBlas Managed => Default as ManagedBlas ?? OwnManaged.Value;

    /// <summary>
    /// The backend for a job whose products run on <paramref name="kernel"/> (TrainingSpec.Gemm);
    /// null: this process's own, <see cref="Default"/> (a job trained in one process). Fails,
    /// naming both, when this process cannot run that kernel.
    /// </summary>
    public static IBlas For(string? kernel)
    {
        if (kernel is null) return Default;
        if (Kernels.Contains(kernel)) return kernel == ManagedKernelHere ? Managed : Default;
        throw new InvalidOperationException($"This process cannot run the job's GEMM kernel '{kernel}': its own is '{Kernel(Default)}' ({Describe(Default)}; "
            + $"{EnvironmentVariable}={Environment.GetEnvironmentVariable(EnvironmentVariable) ?? "auto"}). A job computes on the kernel it was submitted with, "
            + $"to keep its bits; run every silo on one kernel ({EnvironmentVariable}=managed runs the same on every CPU with FMA).");
    }

    /// <summary>
    /// The kernel a job computes on: <paramref name="own"/>, the kernel of the silo it is submitted on, when
    /// every active silo runs it to the bit (<paramref name="everySilo"/>: each one's <see cref="Kernels"/>);
    /// else managed, which every silo with FMA runs and which gives the same bits on every such CPU. Where
    /// no kernel runs on every silo (silos with FMA and without), the one the most silos run, own first on a
    /// tie, then managed: its grains then go only to those silos (JobSilos, in Trainer.Grains). So a job's
    /// bits never depend on which silos its workers and parameter server land on, in a cluster of mixed
    /// CPUs, OpenBLAS builds or <c>TRAINER_BLAS</c> settings.
    /// </summary>
    public static string ForJob(string own, IEnumerable<IReadOnlyCollection<string>> everySilo)
    {
        var silos = everySilo.ToArray();
        string[] candidates = [own, ManagedKernel, UnfusedManagedKernel];
        string best = own;
        int most = -1;
        foreach (var kernel in candidates)
        {
            int running = silos.Count(kernels => kernels.Contains(kernel));
            if (running == silos.Length) return kernel;
            if (running > most) (best, most) = (kernel, running);
        }
        return best;
    }

    public static BlasBackend FromEnvironment()
    {
        var value = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return Parse(value, EnvironmentVariable);
    }

    public static BlasBackend Parse(string? value, string field) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => BlasBackend.Auto,
        "openblas" => BlasBackend.OpenBlas,
        "managed" => BlasBackend.Managed,
        _ => throw new ArgumentException($"{field} is '{value}'; allowed: auto, openblas, managed."),
    };

    /// <summary>Creates the backend; forcing OpenBLAS where it is missing is an error, not a silent fallback.</summary>
    public static IBlas Create(BlasBackend backend) => backend switch
    {
        BlasBackend.Managed => new ManagedBlas(),
        BlasBackend.OpenBlas => SystemOpenBlas ?? throw new InvalidOperationException(
            "OpenBLAS was requested but " + (OpenBlas.TryLoad(out var why) is null ? why : "it failed to load")),
        _ => SystemOpenBlas is { } openBlas && !IsGenericFallback(openBlas) && !IsNarrowerThanCpu(openBlas) ? openBlas : new ManagedBlas(),
    };

    /// <summary>
    /// OpenBLAS 0.3.21 runs its AVX2 Haswell kernel on CPUs it does not know to have AVX-512 (AMD Zen 4
    /// and 5 among them), where the managed kernel on 512-bit vectors is faster per product (1.3-2.2x on
    /// the seed's and workload F's products of 1M multiply-adds or more, docs/performance.md). Where the
    /// runtime has 512-bit vectors and OpenBLAS's kernel has none, auto prefers managed; an AVX-512 kernel
    /// (SkylakeX, Cooperlake, SapphireRapids) it keeps.
    /// </summary>
    public static bool IsNarrowerThanCpu(OpenBlas openBlas) =>
        global::System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated
        && !(openBlas.CoreName.StartsWith("SkylakeX", StringComparison.OrdinalIgnoreCase)
             || openBlas.CoreName.StartsWith("Cooperlake", StringComparison.OrdinalIgnoreCase)
             || openBlas.CoreName.StartsWith("SapphireRapids", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// OpenBLAS 0.3.21 does not recognise some virtualised CPUs and runs its generic SSE3 "Prescott"
    /// kernel there, far slower than the managed kernel (docs/benchmarks-avx2.md). Where the CPU has
    /// AVX2 and FMA, auto then prefers managed. Where OpenBLAS runs a kernel for the CPU as wide as
    /// .NET's vectors (Haswell or Zen on AVX2, SkylakeX on AVX-512; <see cref="IsNarrowerThanCpu"/>)
    /// auto keeps it: it is faster per product than the managed kernel of the same vector width
    /// (docs/performance.md, "AVX2 CPUs and the cores of a silo").
    /// Deterministic (no timing), so every silo on the same kind of machine makes the same choice;
    /// TRAINER_BLAS=openblas still forces OpenBLAS.
    /// </summary>
    public static bool IsGenericFallback(OpenBlas openBlas) =>
        openBlas.CoreName.Equals("Prescott", StringComparison.OrdinalIgnoreCase)
        && global::System.Runtime.Intrinsics.X86.Avx2.IsSupported
        && global::System.Runtime.Intrinsics.X86.Fma.IsSupported;
}
