using System.Numerics;

namespace Trainer.Core.Linalg;

/// <summary>
/// How <see cref="OpenBlas"/> cuts a product into single-threaded OpenBLAS calls: <see cref="Count"/>
/// blocks of the rows of C (<see cref="ByRows"/>) or of its columns, chosen from the shape alone.
/// </summary>
/// <remarks>
/// NOTE: never from the thread count. OpenBLAS's kernels round an element of an edge tile (the
/// last rows or columns of a piece, fewer than the kernel's unroll) differently from one of a whole
/// tile, and its own threaded driver cuts C where the thread count says: in 0.3.21's Haswell kernel
/// on 2 threads the last row of each quarter of a 100-row δᵀ·x changes its bits, and in float32
/// nearly every element does. So the same product gets the same blocks, each the same call, whether
/// one thread runs them all or several share them (<see cref="OpenBlas"/>).
/// </remarks>
internal readonly record struct GemmBlocks(bool ByRows, int Count, int Extent)
{
    // A block re-packs the whole other operand (op(B) for a block of rows, op(A) for one of columns),
    // as many values as a single row or column of the block has multiply-adds: at least 32 rows or
    // columns keep that copy small beside the block's arithmetic.
    private const int MinimumExtent = 32;

    // At most this many blocks: a GEMM's threads beyond it go unused, but every block costs its
    // OpenBLAS call and its re-packing also when one thread runs them all (docs/performance.md).
    private const int MaximumCount = 8;

    // Block edges on whole tiles of the x86 kernels' unrolls (powers of two up to 16), so only the last block has edge tiles.
    private const int Align = 16;

    /// <summary>
    /// The blocks of an m x n x k product: one below twice <see cref="GemmThreads.ParallelWork"/> multiply-adds,
    /// else a power of two up to <see cref="MaximumCount"/> (so 1, 2, 4, ... threads share them evenly) of at
    /// least that work and <see cref="MinimumExtent"/> rows or columns each, along C's longer side (whose
    /// blocks are then longest).
    /// </summary>
    public static GemmBlocks For(int m, int n, int k)
    {
        bool byRows = m > n;
        int extent = byRows ? m : n;
        long most = Math.Min(Math.Min((long)m * n * k / GemmThreads.ParallelWork, extent / MinimumExtent), MaximumCount);
        int count = most < 2 ? 1 : 1 << BitOperations.Log2((ulong)most);
        return new(byRows, count, extent);
    }

    /// <summary>Block <paramref name="block"/>'s rows (or columns) of C, [From, To).</summary>
    public (int From, int To) this[int block] => (Start(block), Start(block + 1));

    private int Start(int block) => block == Count ? Extent : (int)((long)Extent * block / Count) / Align * Align;
}
