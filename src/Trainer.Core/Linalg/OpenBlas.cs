using System.Collections.Concurrent;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Trainer.Core.Linalg;

/// <summary>
/// The system OpenBLAS, bound at run time through its C interface (cblas). Nothing is linked at
/// build time: <see cref="TryLoad"/> probes the usual library names and returns null when none loads.
/// </summary>
/// <remarks>
/// OpenBLAS's own threads never run (its count is set to 1 on load): a product is cut into blocks
/// fixed by its shape (<see cref="GemmBlocks"/>, whose NOTE says why), each one single-threaded
/// OpenBLAS call, run on this thread and up to <see cref="Threads"/> - 1 of <see cref="GemmThreads"/>'
/// helpers. So a product's bits do not depend on <see cref="Threads"/>.
/// <para>Hand-written P/Invoke because no maintained NuGet package binds the system OpenBLAS for net10.0
/// (MathNet's native provider ships its own MKL/OpenBLAS build, which this machine cannot fetch).</para>
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
    private readonly delegate* unmanaged[Cdecl]<nint> _coreName;
    private readonly delegate* unmanaged[Cdecl]<nint> _config;

    private int _threads = 1;

    private OpenBlas(nint handle, string path)
    {
        LibraryPath = path;
        _dgemm = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, double, double*, int, double*, int, double, double*, int, void>)NativeLibrary.GetExport(handle, "cblas_dgemm");
        _sgemm = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)NativeLibrary.GetExport(handle, "cblas_sgemm");
        _coreName = NativeLibrary.TryGetExport(handle, "openblas_get_corename", out var core)
            ? (delegate* unmanaged[Cdecl]<nint>)core : null;
        _config = NativeLibrary.TryGetExport(handle, "openblas_get_config", out var config)
            ? (delegate* unmanaged[Cdecl]<nint>)config : null;
        // OpenBLAS's own threads would move the bits with their number (GemmBlocks' NOTE): one, always.
        if (NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out var setThreads))
            ((delegate* unmanaged[Cdecl]<int, void>)setThreads)(1);
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

    /// <summary>
    /// The library's version, "0.3.21", from its build configuration ("OpenBLAS 0.3.21 DYNAMIC_ARCH ..."),
    /// or "unknown". Two releases may round a product differently with the same kernel.
    /// </summary>
    public string Version
    {
        get
        {
            var config = _config is null ? null : Marshal.PtrToStringAnsi(_config());
            var words = config?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
            return words.Length >= 2 && words[0].Equals("OpenBLAS", StringComparison.OrdinalIgnoreCase) ? words[1] : "unknown";
        }
    }

    /// <summary>Threads one product may use, this one included (1, the default: all its blocks on the caller's thread).</summary>
    public int Threads => Volatile.Read(ref _threads);

    /// <summary>Sets <see cref="Threads"/>, e.g. to the cores a silo has per worker it runs.</summary>
    public void SetThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Volatile.Write(ref _threads, threads);
    }

    /// <summary>
    /// Tried once per shape on random values (<see cref="Probe{T}"/>) and remembered; shapes whose C has more than
    /// <see cref="ProbeElements"/> elements are not tried, and not promised.
    /// </summary>
    /// <remarks>
    /// NOTE: OpenBLAS documents no rounding for beta 1. Its level-3 driver cuts k into blocks by k alone and adds
    /// each block's register sums to C (beta having been applied first, and skipped at 1), so beta 1 rounds as
    /// adding the product formed alone when k is one block, and otherwise does not. Where a block ends depends on
    /// the kernel OpenBLAS picked for this CPU and on its version, and no function of its interface tells, so each
    /// shape is tried: a different order of additions shows in most elements of a product of random values.
    /// </remarks>
    public bool AddsInOnePass<T>(Transpose transA, Transpose transB, int m, int n, int k) where T : unmanaged
    {
        if (typeof(T) != typeof(double) && typeof(T) != typeof(float)) return false;
        if (m <= 0 || n <= 0 || k <= 0 || (long)m * n > ProbeElements) return false;
        return _addsInOnePass.GetOrAdd((typeof(T) == typeof(float), transA, transB, m, n, k),
            static (shape, blas) => shape.Single
                ? blas.Probe<float>(shape.TransA, shape.TransB, shape.M, shape.N, shape.K)
                : blas.Probe<double>(shape.TransA, shape.TransB, shape.M, shape.N, shape.K), this);
    }

    /// <summary>The largest C (in elements) <see cref="AddsInOnePass{T}"/> tries: its three matrices are allocated for the try.</summary>
    public const int ProbeElements = 1 << 20;

    private readonly ConcurrentDictionary<(bool Single, Transpose TransA, Transpose TransB, int M, int N, int K), bool> _addsInOnePass = new();

    /// <summary>Whether beta 1 gives C + (the product formed alone) to the bit, on random values of this shape.</summary>
    private bool Probe<T>(Transpose transA, Transpose transB, int m, int n, int k) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var random = new Random(m * 31 + n * 17 + k);
        T[] Values(int length)
        {
            var values = new T[length];
            for (int i = 0; i < length; i++) values[i] = T.CreateTruncating(random.NextDouble() * 2 - 1);
            return values;
        }
        var a = Values(m * k);
        var b = Values(k * n);
        var c = Values(m * n);
        int lda = transA == Transpose.No ? k : m, ldb = transB == Transpose.No ? n : k;
        var product = new T[m * n];
        this.Gemm(transA, transB, m, n, k, a, lda, b, ldb, product, n);
        var alone = new T[m * n];
        TensorPrimitives.Add<T>(c, product, alone);
        this.GemmAdd(transA, transB, m, n, k, a, lda, b, ldb, c, n);
        return MemoryMarshal.AsBytes(c.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(alone.AsSpan()));
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
            Run(new Product<double>(this, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc));
    }

    public void Gemm(Transpose transA, Transpose transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        GemmChecks.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a, pb = b, pc = c)
            Run(new Product<float>(this, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc));
    }

    /// <summary>Every block of the product, on this thread alone when there is one block or one thread (nothing allocated).</summary>
    private void Run<T>(Product<T> product) where T : unmanaged
    {
        var blocks = GemmBlocks.For(product.M, product.N, product.K);
        int threads = Threads;
        if (blocks.Count == 1 || threads == 1)
            for (int block = 0; block < blocks.Count; block++) product.Block(blocks, block);
        else
            GemmThreads.Run(new BlockWork<T>(product, blocks), threads);
    }

    /// <summary>C = alpha · op(A) · op(B) + beta · C over pointers into pinned spans; shapes as in <see cref="IBlas"/>.</summary>
    private readonly struct Product<T>(OpenBlas blas, Transpose transA, Transpose transB, int m, int n, int k,
        T alpha, T* a, int lda, T* b, int ldb, T beta, T* c, int ldc) where T : unmanaged
    {
        public int M => m;
        public int N => n;
        public int K => k;

        /// <summary>Rows [from, to) of C from the same rows of op(A), or its columns from the same columns of op(B): one OpenBLAS call.</summary>
        public void Block(GemmBlocks blocks, int block)
        {
            var (from, to) = blocks[block];
            if (blocks.ByRows)
                blas.Call(transA, transB, to - from, n, k, alpha, a + (transA == Transpose.No ? (nint)from * lda : from), lda, b, ldb, beta, c + (nint)from * ldc, ldc);
            else
                blas.Call(transA, transB, m, to - from, k, alpha, a, lda, b + (transB == Transpose.No ? from : (nint)from * ldb), ldb, beta, c + from, ldc);
        }
    }

    /// <summary>The blocks of one product, taken in turn by whichever threads help.</summary>
    private sealed class BlockWork<T>(Product<T> product, GemmBlocks blocks) : PartedWork(blocks.Count) where T : unmanaged
    {
        protected override void RunPart(int part) => product.Block(blocks, part);
    }

    private void Call<T>(Transpose transA, Transpose transB, int m, int n, int k, T alpha, T* a, int lda, T* b, int ldb, T beta, T* c, int ldc)
        where T : unmanaged
    {
        if (typeof(T) == typeof(double))
            _dgemm(RowMajor, Op(transA), Op(transB), m, n, k, Unsafe.BitCast<T, double>(alpha), (double*)a, lda, (double*)b, ldb, Unsafe.BitCast<T, double>(beta), (double*)c, ldc);
        else
            _sgemm(RowMajor, Op(transA), Op(transB), m, n, k, Unsafe.BitCast<T, float>(alpha), (float*)a, lda, (float*)b, ldb, Unsafe.BitCast<T, float>(beta), (float*)c, ldc);
    }

    private static int Op(Transpose t) => t == Transpose.No ? NoTrans : Trans;
}
