using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// Jobs' uploaded rows held once per silo, shared by every worker and parameter server
/// of the job on the silo, as <see cref="StoredFiles"/> shares the files of a job whose data stays on
/// the silos: the first holder fetches them from the job's dataset grain, the others wait for that
/// fetch, and the last holder's release (its grain deactivates: the job ended, or the grain moved)
/// lets them go. A silo has one (<c>TrainerSilo</c> registers it).
/// </summary>
/// <remarks>
/// Keyed by the job and the dataset grain's version of its rows (<see cref="IDatasetGrain.GetVersionAsync"/>),
/// never by what the data was called: two jobs never share rows, and rows stored again as new arrays
/// are held apart from the old. Every row of the upload (training, then held-out) is held as it arrived
/// (inputs as the client's files held them: bytes, float32 or float64), read in place (<see cref="PayloadRows"/>),
/// whatever the job's precision: each read converts the row it takes, as a converted copy would have (the same bits).
/// NOTE: a narrowed copy of the training rows (half their bytes) was kept here once; on the dataset
/// grain's silo it came on top of the float64 rows, which that silo holds anyway (they are the job
/// grain's arrays), and elsewhere the float64 rows it was narrowed from were held while it was made.
/// A failed fetch is forgotten, so the next holder fetches again. Thread-safe.
/// </remarks>
public sealed class SiloUploads
{
    private readonly Lock _lock = new();
    private readonly Dictionary<Key, Entry> _held = [];
    private long _fetches;

    private readonly record struct Key(string Job, long Version);

    private sealed class Entry
    {
        public TaskCompletionSource<ISampleRows> Rows { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Holders;
    }

    /// <summary>
    /// Holds job <paramref name="job"/>'s uploaded rows on this silo, fetched with <paramref name="receive"/>
    /// (the caller's way to take a transfer) when no one here holds them; null when the job uploaded none.
    /// Dispose to let go.
    /// </summary>
    internal async Task<HeldRows?> AcquireAsync(IGrainFactory grains, string job, TrainingSpec spec,
        Func<DatasetTransfer?, Task<DatasetPayload?>> receive)
    {
        var dataset = grains.GetGrain<IDatasetGrain>(job);
        long version = await dataset.GetVersionAsync();
        if (version == 0) return null;
        var key = new Key(job, version);
        Entry? entry;
        bool first;
        lock (_lock)
        {
            first = !_held.TryGetValue(key, out entry);
            if (first) _held[key] = entry = new Entry();
            entry!.Holders++;
        }
        if (first) await FetchAsync(key, entry, () => FetchRowsAsync(dataset, key, spec, receive));
        try
        {
            return new HeldRows(await entry.Rows.Task, () => Release(key, entry));
        }
        catch
        {
            Release(key, entry);
            throw;
        }
    }

    private static async Task<ISampleRows> FetchRowsAsync(IDatasetGrain dataset, Key key, TrainingSpec spec, Func<DatasetTransfer?, Task<DatasetPayload?>> receive)
    {
        // All the rows at once: the dataset grain sends its own arrays (a range would be copied out in its turn).
        var transfer = await dataset.GetRowsAsync(0, spec.ResolvedSamples + spec.HeldOutSamples);
        // NOTE: rows stored again between the two calls may be other rows; the job's recovery asks again.
        if (transfer is null || transfer.Version != key.Version)
            throw new StateLostException($"Job {key.Job}: its uploaded rows changed while this silo fetched them (version {key.Version}, now {transfer?.Version ?? 0}).");
        return new PayloadRows((await receive(transfer))!);
    }

    private async Task FetchAsync(Key key, Entry entry, Func<Task<ISampleRows>> fetch)
    {
        Interlocked.Increment(ref _fetches);
        try
        {
            entry.Rows.SetResult(await fetch());
        }
        catch (Exception e)
        {
            lock (_lock)
                if (_held.TryGetValue(key, out var held) && held == entry) _held.Remove(key);
            entry.Rows.SetException(e);
        }
    }

    private void Release(Key key, Entry entry)
    {
        lock (_lock)
        {
            if (--entry.Holders > 0) return;
            if (_held.TryGetValue(key, out var held) && held == entry) _held.Remove(key);
        }
    }

    /// <summary>How many sets of rows this silo holds (tests).</summary>
    internal int HeldCount
    {
        get { lock (_lock) return _held.Count; }
    }

    /// <summary>How many times this silo fetched rows from a dataset grain (tests).</summary>
    internal long Fetches => Interlocked.Read(ref _fetches);

    /// <summary>One holder's hold on a job's rows on this silo; <see cref="Dispose"/> lets go (once).</summary>
    internal sealed class HeldRows(ISampleRows rows, Action release) : IDisposable
    {
        private Action? _release = release;

        /// <summary>Every row of the upload: the training rows, then the held-out ones.</summary>
        public ISampleRows Rows => rows;

        public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
    }
}
