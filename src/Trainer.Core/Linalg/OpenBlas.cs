using System.Runtime.InteropServices;

namespace Trainer.Core.Linalg;

/// <summary>
/// The system OpenBLAS, bound at run time through its C interface (cblas). Nothing is linked at
/// build time: <see cref="TryLoad"/> probes the usual library names and returns null when none loads.
/// </summary>
/// <remarks>
/// Hand-written P/Invoke because no maintained NuGet package binds the system OpenBLAS for net10.0
/// (MathNet's native provider ships its own MKL/OpenBLAS build, which this machine cannot fetch).
/// </remarks>
public sealed unsafe class OpenBlas : IBlas
{
    private const int RowMajor = 101;
    private const int NoTrans = 111;
    private const int Trans = 112;

    // NOTE: Debian installs the pthread flavour under openblas-pthread/ and points libopenblas.so.0 at
    // it through update-alternatives; try the alternative first, then the direct paths.
    private static readonly string[] Candidates =
    [
        "libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "libopenblas.so",
        "libopenblas.dylib",
        "libopenblas.dll",
    ];

    private readonly delegate* unmanaged[Cdecl]<int, int, int, int, int, int, double, double*, int, double*, int, double, double*, int, void> _dgemm;
    private readonly delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> _sgemm;
    private readonly delegate* unmanaged[Cdecl]<int, void> _setThreads;
    private readonly delegate* unmanaged[Cdecl]<int> _getThreads;
    private readonly delegate* unmanaged[Cdecl]<nint> _coreName;

    private OpenBlas(nint handle, string path)
    {
        LibraryPath = path;
        _dgemm = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, double, double*, int, double*, int, double, double*, int, void>)NativeLibrary.GetExport(handle, "cblas_dgemm");
        _sgemm = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)NativeLibrary.GetExport(handle, "cblas_sgemm");
        _setThreads = NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out var set)
            ? (delegate* unmanaged[Cdecl]<int, void>)set : null;
        _getThreads = NativeLibrary.TryGetExport(handle, "openblas_get_num_threads", out var get)
            ? (delegate* unmanaged[Cdecl]<int>)get : null;
        _coreName = NativeLibrary.TryGetExport(handle, "openblas_get_corename", out var core)
            ? (delegate* unmanaged[Cdecl]<nint>)core : null;
    }

    public string Name => "openblas";

    /// <summary>The library file that was loaded.</summary>
    public string LibraryPath { get; }

    /// <summary>
    /// The CPU kernel OpenBLAS chose ("Haswell", "SkylakeX", ...), or "unknown". NOTE: OpenBLAS 0.3.21
    /// does not recognise some virtualised CPUs and falls back to the generic "Prescott" kernel, about
    /// 2x slower; OPENBLAS_CORETYPE=Haswell (set before the process starts) overrides it.
    /// </summary>
    public string CoreName => _coreName is null ? "unknown" : Marshal.PtrToStringAnsi(_coreName()) ?? "unknown";

    /// <summary>OpenBLAS's own thread count (process-wide), or 0 when the library does not say.</summary>
    public int Threads => _getThreads is null ? 0 : _getThreads();

    /// <summary>Sets OpenBLAS's process-wide thread count (e.g. 1 when workers already fill the cores).</summary>
    public void SetThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        if (_setThreads is not null) _setThreads(threads);
    }

    /// <summary>Loads the system OpenBLAS, or returns null (and why) when it is not installed.</summary>
    public static OpenBlas? TryLoad(out string? failure)
    {
        foreach (var name in Candidates)
        {
            if (!NativeLibrary.TryLoad(name, out var handle)) continue;
            if (NativeLibrary.TryGetExport(handle, "cblas_dgemm", out _) && NativeLibrary.TryGetExport(handle, "cblas_sgemm", out _))
            {
                failure = null;
                return new OpenBlas(handle, name);
            }
            NativeLibrary.Free(handle);
        }
        failure = "no OpenBLAS library with cblas_dgemm was found (tried " + string.Join(", ", Candidates) + "); on Debian: apt-get install libopenblas0-pthread";
        return null;
    }

    public void Gemm(Transpose transA, Transpose transB, int m, int n, int k,
        double alpha, ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb,
        double beta, Span<double> c, int ldc)
    {
        GemmChecks.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        if (m == 0 || n == 0) return;
        fixed (double* pa = a, pb = b, pc = c)
            _dgemm(RowMajor, Op(transA), Op(transB), m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    public void Gemm(Transpose transA, Transpose transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        GemmChecks.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a, pb = b, pc = c)
            _sgemm(RowMajor, Op(transA), Op(transB), m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    private static int Op(Transpose t) => t == Transpose.No ? NoTrans : Trans;
}
