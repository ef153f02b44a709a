namespace Trainer.Core.Data;

/// <summary>
/// One <typeparamref name="T"/> per batch size a job's steps can have: the batch's, and an epoch's
/// smaller last one (<see cref="BatchSchedule.Sizes"/>). Plans, pack layouts and buffers depend on
/// the batch size; each step picks its own with <see cref="For"/>, which allocates nothing.
/// </summary>
public sealed class PerBatchSize<T> where T : class
{
    private readonly BatchSchedule _schedule;
    private readonly T _full;
    private readonly T? _last;

    public PerBatchSize(BatchSchedule schedule, Func<int, T> create)
    {
        _schedule = schedule;
        _full = create(schedule.Batch);
        if (schedule.LastBatch != schedule.Batch) _last = create(schedule.LastBatch);
    }

    /// <summary>The one for step <paramref name="step"/>'s batch size.</summary>
    public T For(int step) => _last is null || _schedule.SizeOf(step) == _schedule.Batch ? _full : _last;

    /// <summary>Every one: the full batch's first.</summary>
    public IEnumerable<T> All => _last is null ? [_full] : [_full, _last];
}
