namespace Trainer.Grains;

/// <summary>
/// Where a split job's worker collects the activation blocks of its coming steps: every rank's
/// block of a step, copied on arrival into one buffer in rank order (the layout
/// <see cref="Trainer.Core.Training.FirstLayerSplit{T}.Step"/> reads), for the run's generation only.
/// </summary>
/// <remarks>
/// Two buffers suffice: a worker sends its block for step s + 1 only after it has read every block
/// of step s, so no block of step s + 2 can exist before step s is consumed. Blocks of a newer
/// generation (a restore whose run has not reached this worker yet) are kept, copied, until that
/// run begins, and they end a run of an older generation that still waits: it can never complete.
/// Blocks of older or aborted generations are dropped. Deliveries run on the grain's turns, the
/// consumer on a compute thread, hence the lock; copies are a block (the seed: 25 KB) at a time.
/// </remarks>
internal sealed class BlockMailbox
{
    private readonly Lock _gate = new();
    private readonly byte[][] _buffers = new byte[2][];
    private readonly int[] _stepOf = [-1, -1];
    private readonly int[] _received = new int[2];
    private bool[][] _from = [[], []];
    private BlockLayout? _layout;
    private long _generation = long.MinValue;
    private long _abortedUpTo = long.MinValue;
    private int _consumed;
    private readonly List<Early> _early = [];
    private TaskCompletionSource<byte[]>? _waiter;
    private int _waitStep;

    /// <summary>Starts assembling generation <paramref name="generation"/> from step <paramref name="firstStep"/>, taking any of its blocks that came early.</summary>
    public void Begin(long generation, int firstStep, BlockLayout layout)
    {
        lock (_gate)
        {
            if (_layout != layout)
            {
                _layout = layout;
                _buffers[0] = new byte[layout.TotalBytes];
                _buffers[1] = new byte[layout.TotalBytes];
                _from = [new bool[layout.Ranks], new bool[layout.Ranks]];
            }
            _generation = generation;
            _consumed = firstStep - 1;
            _stepOf[0] = _stepOf[1] = -1;
            Fail(new OperationCanceledException("A new run of the split job began."));
            foreach (var early in _early.Where(e => e.Generation == generation)) Place(early.Step, early.Rank, early.Values);
            _early.Clear();
        }
    }

    /// <summary>Takes rank <paramref name="rank"/>'s block of <paramref name="step"/> (copied); drops what no run of this worker will read.</summary>
    public void Put(long generation, int step, int rank, ReadOnlySpan<byte> values)
    {
        lock (_gate)
        {
            if (generation <= _abortedUpTo || generation < _generation) return;
            if (generation > _generation)
            {
                // A newer run has started elsewhere: any run of this worker still waiting belongs to an older one.
                if (_early.Count > 0 && _early[0].Generation != generation) _early.Clear();
                _early.Add(new Early(generation, step, rank, values.ToArray()));
                Fail(new OperationCanceledException($"The split job moved on to a newer run (generation {generation}) while this worker waited for step {_waitStep}."));
                return;
            }
            Place(step, rank, values);
        }
    }

    /// <summary>Every rank's block of <paramref name="step"/> in rank order, once all have arrived. The buffer is valid until <see cref="Consumed"/>.</summary>
    public Task<byte[]> WaitAsync(long generation, int step)
    {
        lock (_gate)
        {
            if (generation != _generation || generation <= _abortedUpTo)
                return Task.FromException<byte[]>(new OperationCanceledException($"The split run of generation {generation} is no longer current."));
            if (step != _consumed + 1)
                throw new InvalidOperationException($"Step {step} awaited, but step {_consumed} was the last one consumed.");
            int slot = step & 1;
            if (_stepOf[slot] == step && _received[slot] == _layout!.Ranks) return Task.FromResult(_buffers[slot]);
            _waiter = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waitStep = step;
            return _waiter.Task;
        }
    }

    /// <summary>The blocks of <paramref name="step"/> have been read; its buffer takes step + 2's.</summary>
    public void Consumed(int step)
    {
        lock (_gate) _consumed = step;
    }

    /// <summary>Ends a wait of <paramref name="generation"/> or older and drops their blocks from now on.</summary>
    public void Abort(long generation)
    {
        lock (_gate)
        {
            _abortedUpTo = Math.Max(_abortedUpTo, generation);
            if (_generation <= generation) Fail(new OperationCanceledException($"The split run of generation {_generation} was aborted: another worker of the job failed."));
        }
    }

    private void Place(int step, int rank, ReadOnlySpan<byte> values)
    {
        var layout = _layout!;
        // Steps already read are duplicates; step + 2 and beyond cannot exist yet (see remarks).
        if (step <= _consumed || step > _consumed + 2 || (uint)rank >= (uint)layout.Ranks) return;
        if (values.Length != layout.Lengths[rank])
            throw new InvalidOperationException($"Worker {rank}'s activation block for step {step} has {values.Length} bytes; {layout.Lengths[rank]} expected.");
        int slot = step & 1;
        if (_stepOf[slot] != step)
        {
            _stepOf[slot] = step;
            _received[slot] = 0;
            Array.Clear(_from[slot]);
        }
        if (_from[slot][rank]) return;
        values.CopyTo(_buffers[slot].AsSpan(layout.Offsets[rank]));
        _from[slot][rank] = true;
        if (++_received[slot] == layout.Ranks && _waiter is { } waiter && _waitStep == step)
        {
            _waiter = null;
            waiter.SetResult(_buffers[slot]);
        }
    }

    private void Fail(Exception reason)
    {
        if (_waiter is not { } waiter) return;
        _waiter = null;
        waiter.SetException(reason);
    }

    private sealed record Early(long Generation, int Step, int Rank, byte[] Values);
}

/// <summary>Where each rank's block sits in a step's assembled blocks, in bytes.</summary>
internal sealed record BlockLayout(int[] Offsets, int[] Lengths, int TotalBytes)
{
    public int Ranks => Offsets.Length;

    // Records compare arrays by reference; layouts are equal when their numbers are.
    public bool Equals(BlockLayout? other) =>
        other is not null && TotalBytes == other.TotalBytes && Offsets.AsSpan().SequenceEqual(other.Offsets) && Lengths.AsSpan().SequenceEqual(other.Lengths);

    public override int GetHashCode() => HashCode.Combine(TotalBytes, Offsets.Length);
}
