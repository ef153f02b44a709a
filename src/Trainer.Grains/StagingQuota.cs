using Microsoft.Extensions.Options;

namespace Trainer.Grains;

/// <summary>
/// The bytes of uploads a silo holds for submissions not made yet, over all its jobs, bounded by
/// <see cref="TrainerOptions.MaxStagedBytesPerSilo"/>: clients choose the sizes and the job ids, so
/// without a bound on the sum, uploads to made-up jobs could take all of a silo's memory.
/// </summary>
public sealed class StagingQuota(IOptions<TrainerOptions> options)
{
    private long _held;

    /// <summary>The most bytes held at once: the setting, or when it is 0 half the memory .NET may use in this process.</summary>
    public long Limit { get; } = options.Value.MaxStagedBytesPerSilo > 0 ? options.Value.MaxStagedBytesPerSilo : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;

    public long Held => Interlocked.Read(ref _held);

    /// <summary>Holds <paramref name="bytes"/> more, unless that would pass <see cref="Limit"/>.</summary>
    public bool TryHold(long bytes)
    {
        for (long held = Held; ; held = Held)
        {
            if (held + bytes > Limit) return false;
            if (Interlocked.CompareExchange(ref _held, held + bytes, held) == held) return true;
        }
    }

    public void Release(long bytes) => Interlocked.Add(ref _held, -bytes);
}
