using Trainer.Core.Data;
using Trainer.Core.Models;

namespace Trainer.Core.Training;

/// <summary>
/// What crosses the wire for each layer of a step, fixed per job (never per worker count).
/// A fully connected layer's gradient over B samples is exactly δᵀ·a, the product of two thin
/// factors δ (B x n_out) and a (B x n_in) ("sufficient factors", Xie et al. 2016). When those
/// factors are smaller than the n_out x n_in matrix, the layer is FACTORED: workers send δ (and a,
/// unless a is the batch input, which every replica already holds) and every replica multiplies
/// them out itself, shard by shard, in shard order. Otherwise the layer is DENSE: workers send
/// their shard's gradient, summed in shard order. Both give the same gradient to the bit.
/// </summary>
/// <remarks>
/// Only the hand-derived MLP can hand out its factors; models built through autograd (and so the
/// gradient penalty) are dense throughout. A dense-only plan's pack is the model's flat gradient.
/// </remarks>
public sealed class ExchangePlan
{
    private ExchangePlan(ModelSpec model, int batch, bool[] factored, int microShards)
    {
        Model = model;
        Batch = batch;
        Factored = factored;
        MicroShardCount = microShards;
        Micro = new MicroShards(batch, Math.Min(microShards, batch));
        Layout = ParameterLayout.For(model);
        Update = PackLayout(batch);
        AnyFactored = factored.Contains(true);
    }

    public ModelSpec Model { get; }

    /// <summary>Samples per step, all shards together.</summary>
    public int Batch { get; }

    /// <summary>Per layer (0-based): true when the layer's gradient travels as factors.</summary>
    public IReadOnlyList<bool> Factored { get; }

    public ParameterLayout Layout { get; }

    /// <summary>The combined update's layout (all <see cref="Batch"/> samples).</summary>
    public Pack Update { get; }

    public bool AnyFactored { get; }

    /// <summary>The job's micro-shard count (<see cref="TrainingSpec.ResolvedMicroShards"/>); a smaller batch gets one per sample.</summary>
    public int MicroShardCount { get; }

    /// <summary>This plan's batch cut into micro-shards, and the tree their sums follow.</summary>
    public MicroShards Micro { get; }

    /// <summary>Every replica needs the whole batch's inputs when the first layer is factored.</summary>
    public bool NeedsBatchInputs => Factored[0];

    /// <summary>
    /// The job's plan. <paramref name="factors"/> false keeps every layer dense (a cluster of one
    /// silo, where nothing crosses a network and duplicated multiplications would only cost time).
    /// The choice never changes the results: both exchanges do the same arithmetic.
    /// </summary>
    public static ExchangePlan For(TrainingSpec spec, bool factors = true) =>
        For(spec.Model, spec.Batch, factors && spec.Engine == Engine.Hand, spec.ResolvedMicroShards);

    /// <param name="microShards">Micro-shards per batch (a smaller batch gets one per sample).</param>
    public static ExchangePlan For(ModelSpec model, int batch, bool factorsAvailable, int microShards = TrainingSpec.AutoMicroShards)
    {
        var factored = new bool[model.LayerCount];
        for (int l = 0; l < model.LayerCount; l++)
        {
            long fanIn = model.LayerSizes[l], fanOut = model.LayerSizes[l + 1];
            long factorValues = batch * (fanOut + (l == 0 ? 0 : fanIn));
            factored[l] = factorsAvailable && factorValues < fanIn * fanOut;
        }
        return new ExchangePlan(model, batch, factored, microShards);
    }

    /// <summary>A plan with the given per-layer choice (tests, and what a future --exchange option would build), with the automatic micro-shard count.</summary>
    public static ExchangePlan With(ModelSpec model, int batch, params bool[] factored)
    {
        if (factored.Length != model.LayerCount)
            throw new ArgumentException($"{factored.Length} choices given for {model.LayerCount} layers.", nameof(factored));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        return new ExchangePlan(model, batch, [.. factored], TrainingSpec.AutoMicroShards);
    }

    /// <summary>This plan with <paramref name="microShards"/> micro-shards per batch.</summary>
    public ExchangePlan WithMicroShards(int microShards) => new(Model, Batch, [.. Factored], microShards);

    /// <summary>
    /// This plan for a batch of <paramref name="batch"/> samples with the same per-layer choices: an
    /// epoch's smaller last batch travels as the others do (the choice never changes the results).
    /// </summary>
    public ExchangePlan ForBatch(int batch) => batch == Batch ? this : new ExchangePlan(Model, batch, [.. Factored], MicroShardCount);

    /// <summary>The layout of a pack holding <paramref name="samples"/> samples' worth of factors.</summary>
    public Pack PackLayout(int samples)
    {
        var layers = new PackLayer[Model.LayerCount];
        int offset = 0;
        for (int l = 0; l < layers.Length; l++)
        {
            int fanIn = Model.LayerSizes[l], fanOut = Model.LayerSizes[l + 1];
            if (Factored[l])
            {
                int delta = offset;
                offset += samples * fanOut;
                int input = l == 0 ? -1 : offset;
                if (l > 0) offset += samples * fanIn;
                layers[l] = new PackLayer(true, fanIn, fanOut, -1, -1, delta, input);
            }
            else
            {
                int weights = offset;
                offset += fanIn * fanOut;
                int bias = Model.Bias ? offset : -1;
                if (Model.Bias) offset += fanOut;
                layers[l] = new PackLayer(false, fanIn, fanOut, weights, bias, -1, -1);
            }
        }
        return new Pack(samples, layers, offset);
    }

    /// <summary>
    /// What each of <paramref name="workers"/> workers sends for a step: one pack per block (a maximal
    /// tree node inside its micro-shards, <see cref="MicroShards.BlocksOf"/>), one after another.
    /// </summary>
    public RankPack[] RankPacks(int workers) => [.. Enumerable.Range(0, workers).Select(rank => RankPack(rank, workers))];

    /// <summary>What worker <paramref name="rank"/> of <paramref name="workers"/> sends for a step (<see cref="RankPacks"/>).</summary>
    public RankPack RankPack(int rank, int workers)
    {
        var nodes = Micro.BlocksOf(rank, workers);
        var blocks = new BlockPack[nodes.Length];
        int offset = 0;
        for (int j = 0; j < nodes.Length; j++)
        {
            var rows = Micro.Rows(nodes[j]);
            blocks[j] = new BlockPack(nodes[j], rows, PackLayout(rows.Count), offset);
            offset += blocks[j].Layout.Length;
        }
        return new RankPack(rank, Micro.RowsOf(rank, workers), blocks, offset);
    }

    /// <summary>Throws unless this plan was made for one of <paramref name="spec"/>'s batch sizes (its batch, or an epoch's smaller last one).</summary>
    internal void CheckFits(TrainingSpec spec)
    {
        if (Batch != spec.Batch && Batch != spec.Schedule().LastBatch)
            throw new ArgumentException($"The plan is for batches of {Batch}; the job's batches hold {string.Join(" or ", spec.Schedule().Sizes)} samples.", "plan");
    }

    public string Describe() => string.Join(", ", Factored.Select((f, l) => $"w{l + 1} {(f ? "factors" : "dense")}"));
}

/// <summary>
/// One layer's slots in a pack: a dense layer holds its summed weight gradient (n_out x n_in) and
/// bias gradient; a factored one holds δ (samples x n_out) and, below the first layer, its input
/// activations a (samples x n_in). Offsets are -1 where a slot does not exist.
/// </summary>
public readonly record struct PackLayer(bool Factored, int FanIn, int FanOut, int Weights, int Bias, int Delta, int Input);

/// <summary>A worker's message for a step: the packs of its blocks (tree nodes of its micro-shards), one after another; <see cref="Rows"/> are the batch's samples it computes.</summary>
public sealed record RankPack(int Rank, Shard Rows, IReadOnlyList<BlockPack> Blocks, int Length);

/// <summary>One block of a <see cref="RankPack"/>: the tree node, its samples in the batch, its pack's layout and where the pack starts.</summary>
public sealed record BlockPack(TreeNode Node, Shard Rows, Pack Layout, int Offset);

/// <summary>A flat buffer's layout for one step's exchange: per layer, dense slots or factors.</summary>
public sealed record Pack(int Samples, IReadOnlyList<PackLayer> Layers, int Length)
{
    /// <summary>False for a dense-only pack, which is laid out exactly like the model's flat gradient.</summary>
    public bool AnyFactored { get; } = Layers.Any(l => l.Factored);
}
