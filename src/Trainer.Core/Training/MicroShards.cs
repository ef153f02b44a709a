using Trainer.Core.Data;

namespace Trainer.Core.Training;

/// <summary>
/// A batch cut into a fixed number of micro-shards (contiguous sample ranges, <see cref="Shard.Split"/>),
/// and the fixed binary tree their sums are reduced over. The cut and the tree depend only on the
/// batch size and the job's micro-shard count, never on the worker count: worker r owns the whole
/// micro-shards <c>Shard.Split(Count, workers)[r]</c>, runs forward and backward on each of them
/// separately, and sums them up the same tree, so its partial sums are nodes of the tree and the
/// parameter server completes it. Every sum is then the same sequence of IEEE operations for any
/// worker count, and so are the weights.
/// </summary>
/// <remarks>
/// The tree is the dyadic one over <see cref="Count"/> leaves: node (level k, index i) covers leaves
/// [i·2^k, (i+1)·2^k) cut at <see cref="Count"/>, and its value is left + right, or its left child's
/// value when the right child covers nothing. A left fold (((m0 + m1) + m2) + m3) would not do: a
/// worker owning m2 and m3 could not add them before it had m0 + m1. With the tree a worker's range
/// splits into a few maximal nodes (<see cref="BlocksOf"/>; one when the counts are powers of two).
/// </remarks>
public sealed class MicroShards
{
    public MicroShards(int batch, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (count > batch)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"A batch of {batch} samples has at most {batch} micro-shards.");
        Batch = batch;
        Count = count;
        Leaves = Shard.Split(batch, count);
        while (1 << Height < count) Height++;
    }

    /// <summary>The micro-shards of a batch of <paramref name="batch"/> samples for a job of <paramref name="spec"/>: its count, or one per sample of a smaller batch.</summary>
    public static MicroShards For(TrainingSpec spec, int batch) => new(batch, Math.Min(spec.ResolvedMicroShards, batch));

    public int Batch { get; }
    public int Count { get; }
    /// <summary>Micro-shard i's samples within the batch.</summary>
    public Shard[] Leaves { get; }
    /// <summary>The tree's height: the root is (Height, 0).</summary>
    public int Height { get; }
    public TreeNode Root => new(Height, 0);

    /// <summary>The samples node <paramref name="node"/> covers.</summary>
    public Shard Rows(TreeNode node)
    {
        int first = node.First, end = node.End(Count);
        return new Shard(0, Leaves[first].Start, Leaves[end - 1].End - Leaves[first].Start);
    }

    /// <summary>The micro-shards worker <paramref name="rank"/> of <paramref name="workers"/> owns (indices [Start, End)).</summary>
    public Shard Owned(int rank, int workers)
    {
        if (workers > Count)
            throw new ArgumentOutOfRangeException(nameof(workers), workers, $"{workers} workers need at least as many micro-shards; the batch has {Count}.");
        return Shard.Split(Count, workers)[rank];
    }

    /// <summary>The samples worker <paramref name="rank"/> of <paramref name="workers"/> computes.</summary>
    public Shard RowsOf(int rank, int workers)
    {
        var owned = Owned(rank, workers);
        return new Shard(rank, Leaves[owned.Start].Start, Leaves[owned.End - 1].End - Leaves[owned.Start].Start);
    }

    /// <summary>
    /// The maximal tree nodes inside worker <paramref name="rank"/>'s micro-shards, left to right: the
    /// partial sums it sends. Each is the highest node covering its leaves (<see cref="Canonical"/>).
    /// </summary>
    public TreeNode[] BlocksOf(int rank, int workers)
    {
        var owned = Owned(rank, workers);
        var blocks = new List<TreeNode>();
        Cover(Root, owned.Start, owned.End, blocks);
        return [.. blocks];
    }

    private void Cover(TreeNode node, int start, int end, List<TreeNode> blocks)
    {
        int first = node.First, last = node.End(Count);
        if (first >= last || last <= start || first >= end) return;
        if (start <= first && last <= end)
        {
            blocks.Add(node);
            return;
        }
        Cover(new TreeNode(node.Level - 1, 2 * node.Index), start, end, blocks);
        Cover(new TreeNode(node.Level - 1, 2 * node.Index + 1), start, end, blocks);
    }

    /// <summary>The leaves of <paramref name="node"/>, as tree nodes, left to right.</summary>
    public TreeNode[] LeavesOf(TreeNode node) => [.. Enumerable.Range(node.First, node.End(Count) - node.First).Select(i => new TreeNode(0, i))];

    /// <summary>The highest node covering exactly <paramref name="node"/>'s leaves: a left child whose right sibling covers nothing stands for its parent.</summary>
    public TreeNode Canonical(TreeNode node)
    {
        while (node.Level < Height && node.Index % 2 == 0 && (node.Index + 1) << node.Level >= Count) node = node.Parent;
        return node;
    }

    /// <summary>
    /// How to sum <paramref name="inputs"/> (tree nodes covering one node's leaves, left to right) up
    /// the tree: a stack of partial sums in slots 0, 1, ...; slot 0 ends holding the sum.
    /// <see cref="ReduceStep.Set"/> puts input i in a slot, <see cref="ReduceStep.Add"/> adds it to
    /// one, <see cref="ReduceStep.Merge"/> adds slot s + 1 to slot s. Steps come grouped by input, in
    /// order: input i's steps may run as soon as input i is there. The same inputs give the same steps,
    /// and any inputs covering the same leaves give the same sum, to the bit.
    /// </summary>
    public ReduceStep[] Schedule(IReadOnlyList<TreeNode> inputs)
    {
        var steps = new List<ReduceStep>();
        var stack = new List<TreeNode>();
        for (int i = 0; i < inputs.Count; i++)
        {
            var node = Canonical(inputs[i]);
            if (stack.Count > 0 && IsLeftSibling(stack[^1], node))
            {
                steps.Add(new ReduceStep(ReduceOp.Add, i, stack.Count - 1));
                stack[^1] = Canonical(node.Parent);
                while (stack.Count >= 2 && IsLeftSibling(stack[^2], stack[^1]))
                {
                    steps.Add(new ReduceStep(ReduceOp.Merge, i, stack.Count - 2));
                    stack.RemoveAt(stack.Count - 1);
                    stack[^1] = Canonical(stack[^1].Parent);
                }
            }
            else
            {
                steps.Add(new ReduceStep(ReduceOp.Set, i, stack.Count));
                stack.Add(node);
            }
        }
        if (stack.Count != 1)
            throw new ArgumentException($"The inputs ({string.Join(", ", inputs)}) do not cover one node of the tree over {Count} micro-shards, left to right.", nameof(inputs));
        return [.. steps];
    }

    /// <summary>The most slots <paramref name="schedule"/> uses at once.</summary>
    public static int SlotsOf(IEnumerable<ReduceStep> schedule) => schedule.Max(s => s.Op == ReduceOp.Merge ? s.Slot + 2 : s.Slot + 1);

    private static bool IsLeftSibling(TreeNode left, TreeNode right) =>
        left.Level == right.Level && left.Index % 2 == 0 && left.Index + 1 == right.Index;

    /// <summary>Sums <paramref name="values"/> (one per input) as <paramref name="schedule"/> says: the losses, reduced like the gradients.</summary>
    public static double Reduce(ReadOnlySpan<ReduceStep> schedule, ReadOnlySpan<double> values, Span<double> slots)
    {
        foreach (var step in schedule)
        {
            switch (step.Op)
            {
                case ReduceOp.Set: slots[step.Slot] = values[step.Input]; break;
                case ReduceOp.Add: slots[step.Slot] += values[step.Input]; break;
                default: slots[step.Slot] += slots[step.Slot + 1]; break;
            }
        }
        return slots[0];
    }
}

/// <summary>A node of a <see cref="MicroShards"/> tree: leaves [Index·2^Level, (Index+1)·2^Level), cut at the leaf count.</summary>
public readonly record struct TreeNode(int Level, int Index)
{
    public int First => Index << Level;
    public int End(int leaves) => Math.Min((Index + 1) << Level, leaves);
    public TreeNode Parent => new(Level + 1, Index / 2);
    public override string ToString() => $"({Level},{Index})";
}

public enum ReduceOp
{
    /// <summary>slot ← input.</summary>
    Set,
    /// <summary>slot ← slot + input.</summary>
    Add,
    /// <summary>slot ← slot + slot[+1].</summary>
    Merge,
}

/// <summary>One step of a reduction: <see cref="Op"/> on <see cref="Slot"/>, for input <see cref="Input"/> (whose arrival it waits for).</summary>
public readonly record struct ReduceStep(ReduceOp Op, int Input, int Slot);
