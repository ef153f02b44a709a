using System.Numerics;
using System.Numerics.Tensors;
using Trainer.Core.Memory;

namespace Trainer.Core.Training;

/// <summary>
/// Runs a reduction schedule (<see cref="MicroShards.Schedule"/>) over packs: the dense layers'
/// slots (weights, then bias, contiguous in any pack) are set, added and merged element by element;
/// factored slots (δ and inputs, one row per sample) are only placed at their samples' rows.
/// Slot 0 of a schedule is the target pack itself; deeper slots are scratch buffers kept here.
/// </summary>
/// <remarks>
/// Every operation is element-wise, so it may be cut into parts (<paramref name="part"/> of
/// <paramref name="parts"/>) run on different threads at once; each element gets the same
/// operations, so the cut changes no bits.
/// </remarks>
internal sealed class PackSums<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly int[] _denseLayers;
    private readonly int[] _compact;
    private readonly int[] _lengths;
    private readonly int _denseLength;
    private readonly List<T[]> _scratch = [];

    public PackSums(ExchangePlan plan)
    {
        var layers = plan.Update.Layers;
        _denseLayers = [.. Enumerable.Range(0, layers.Count).Where(l => !layers[l].Factored)];
        _lengths = [.. _denseLayers.Select(l => layers[l].FanIn * layers[l].FanOut + (layers[l].Bias >= 0 ? layers[l].FanOut : 0))];
        _compact = new int[_denseLayers.Length];
        for (int i = 0, offset = 0; i < _denseLayers.Length; offset += _lengths[i], i++) _compact[i] = offset;
        _denseLength = _lengths.Sum();
    }

    /// <summary>Makes sure <paramref name="slots"/> slots exist (slot 0 is the target; the others are allocated here, once).</summary>
    public void Reserve(int slots)
    {
        while (_scratch.Count < slots - 1) _scratch.Add(LargeArrays.New<T>(_denseLength));
    }

    /// <summary>
    /// One schedule step on the dense slots: <paramref name="input"/> (laid out as <paramref name="inputLayout"/>;
    /// unused by a merge) into the slot it names, slot 0 being <paramref name="target"/> (laid out as <paramref name="targetLayout"/>).
    /// </summary>
    public void Run(ReduceStep step, ReadOnlySpan<T> input, Pack inputLayout, Span<T> target, Pack targetLayout, int part = 0, int parts = 1)
    {
        for (int i = 0; i < _denseLayers.Length; i++)
        {
            var (start, count) = Range(_lengths[i], part, parts);
            if (count == 0) continue;
            var slot = Slot(step.Slot, i, target, targetLayout).Slice(start, count);
            switch (step.Op)
            {
                case ReduceOp.Set:
                    input.Slice(inputLayout.Layers[_denseLayers[i]].Weights + start, count).CopyTo(slot);
                    break;
                case ReduceOp.Add:
                    TensorPrimitives.Add(slot, input.Slice(inputLayout.Layers[_denseLayers[i]].Weights + start, count), slot);
                    break;
                default:
                    TensorPrimitives.Add(slot, Slot(step.Slot + 1, i, target, targetLayout).Slice(start, count), slot);
                    break;
            }
        }
    }

    /// <summary>
    /// One schedule step on the elements [<paramref name="start"/>, + <paramref name="count"/>) of packs without
    /// factors, which are laid out as the model's flat parameters, as every slot is: input, target and slots alike.
    /// </summary>
    public void RunRange(ReduceStep step, ReadOnlySpan<T> input, Span<T> target, int start, int count)
    {
        var slot = (step.Slot == 0 ? target : _scratch[step.Slot - 1].AsSpan()).Slice(start, count);
        switch (step.Op)
        {
            case ReduceOp.Set:
                input.Slice(start, count).CopyTo(slot);
                break;
            case ReduceOp.Add:
                TensorPrimitives.Add(slot, input.Slice(start, count), slot);
                break;
            default:
                TensorPrimitives.Add(slot, _scratch[step.Slot].AsSpan(start, count), slot);
                break;
        }
    }

    /// <summary>
    /// The whole of slot <paramref name="slot"/>, to write a pack into in place: slot 0 is <paramref name="target"/>;
    /// a deeper slot is laid out as a dense pack (weights, then bias, layer by layer), so only a plan without factors has one.
    /// </summary>
    public Span<T> Target(int slot, Span<T> target, Pack targetLayout)
    {
        if (slot == 0) return target;
        if (targetLayout.AnyFactored || targetLayout.Length != _denseLength)
            throw new InvalidOperationException($"Slot {slot} holds the dense layers alone ({_denseLength} values); a pack of {targetLayout.Length} values{(targetLayout.AnyFactored ? " with factors" : "")} cannot be written into it.");
        return _scratch[slot - 1];
    }

    private Span<T> Slot(int slot, int dense, Span<T> target, Pack targetLayout) => slot == 0
        ? target.Slice(targetLayout.Layers[_denseLayers[dense]].Weights, _lengths[dense])
        : _scratch[slot - 1].AsSpan(_compact[dense], _lengths[dense]);

    /// <summary>
    /// Copies <paramref name="input"/>'s factored slots (its samples' δ rows and input rows) into
    /// <paramref name="target"/>'s, from the target's sample <paramref name="row"/> on.
    /// </summary>
    public static void PlaceFactors(ReadOnlySpan<T> input, Pack inputLayout, Span<T> target, Pack targetLayout, int row, int part = 0, int parts = 1)
    {
        int samples = inputLayout.Samples;
        for (int l = 0; l < inputLayout.Layers.Count; l++)
        {
            var from = inputLayout.Layers[l];
            if (!from.Factored) continue;
            var to = targetLayout.Layers[l];
            Copy(input.Slice(from.Delta, samples * from.FanOut), target.Slice(to.Delta + row * to.FanOut, samples * from.FanOut), part, parts);
            if (from.Input >= 0) Copy(input.Slice(from.Input, samples * from.FanIn), target.Slice(to.Input + row * to.FanIn, samples * from.FanIn), part, parts);
        }
    }

    private static void Copy(ReadOnlySpan<T> source, Span<T> target, int part, int parts)
    {
        var (start, count) = Range(source.Length, part, parts);
        source.Slice(start, count).CopyTo(target.Slice(start, count));
    }

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/> equal ranges of <paramref name="length"/> elements.</summary>
    public static (int Start, int Count) Range(int length, int part, int parts)
    {
        int start = (int)((long)length * part / parts);
        return (start, (int)((long)length * (part + 1) / parts) - start);
    }
}
