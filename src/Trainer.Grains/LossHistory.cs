using System.Runtime.InteropServices;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// A job's per-step losses (step s at index s - 1), and a signal that wakes long-polling
/// watchers when a loss is added or the job ends. Lives inside one job grain activation.
/// </summary>
internal sealed class LossHistory
{
    private readonly List<double> _losses = [];
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Count => _losses.Count;

    public double First => _losses.Count > 0 ? _losses[0] : double.NaN;

    public double Last => _losses.Count > 0 ? _losses[^1] : double.NaN;

    public void Add(ReadOnlySpan<double> losses)
    {
        _losses.AddRange(losses);
        Signal();
    }

    /// <summary>Forgets the losses after step <paramref name="steps"/> (a replay from a checkpoint recomputes them).</summary>
    public void TruncateTo(int steps)
    {
        if (_losses.Count > steps) _losses.RemoveRange(steps, _losses.Count - steps);
    }

    /// <summary>Wakes every watcher waiting in <see cref="WaitBeyondAsync"/>.</summary>
    public void Signal() => Interlocked.Exchange(ref _progress, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Waits up to <paramref name="wait"/> for a loss of step <paramref name="fromStep"/> or a signal.</summary>
    public Task WaitBeyondAsync(int fromStep, TimeSpan wait) =>
        fromStep > _losses.Count && wait > TimeSpan.Zero ? Task.WhenAny(_progress.Task, Task.Delay(wait)) : Task.CompletedTask;

    /// <summary>Up to <paramref name="maxCount"/> losses from 1-based step <paramref name="fromStep"/> on.</summary>
    public TensorPayload Slice(int fromStep, int maxCount)
    {
        int available = Math.Max(0, Math.Min(_losses.Count - (fromStep - 1), Math.Max(0, maxCount)));
        return available == 0 ? TensorPayload.Empty : TensorPayload.From(CollectionsMarshal.AsSpan(_losses).Slice(fromStep - 1, available));
    }

    /// <summary>The losses of <paramref name="count"/> steps from 0-based index <paramref name="start"/>, as stored.</summary>
    public byte[] ToBytes(int start, int count) => MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(_losses).Slice(start, count)).ToArray();

    /// <summary>Replaces the history with the concatenation of stored parts, in order.</summary>
    public void Load(IEnumerable<byte[]> parts)
    {
        _losses.Clear();
        foreach (var part in parts) _losses.AddRange(MemoryMarshal.Cast<byte, double>(part));
    }
}
