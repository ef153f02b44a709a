using Trainer.Core;
using Trainer.Core.Data;

namespace Trainer.Grains;

/// <summary>How a data file is read: a .npy array, or an IDX images or labels file (plain or .gz).</summary>
public enum StoredFileKind
{
    Npy,
    IdxImages,
    IdxLabels,
}

/// <summary>
/// Data files opened for reading in place and shared: each file (by path, size and modification time)
/// is opened once while anyone holds it, memory-mapped when it is stored uncompressed (.npy, plain IDX)
/// and decompressed into memory once when it is gzipped (.gz IDX), and the one pass that checks its
/// values (<see cref="StoredArray.Require"/>) is made once per file version and its verdict kept.
/// A silo has one (<see cref="TrainerSilo"/> registers it), shared by every worker and job grain on it;
/// the CLI makes its own to read the files it uploads.
/// </summary>
/// <remarks>
/// Why a verdict per silo and not one for the cluster: "a path every silo can see" need not hold the
/// same bytes on every silo (a copy per host), and a silo must train only on bytes it checked. The
/// pass costs about as much as reading the file once, so a silo pays it once per file version, not
/// per job or per worker. Thread-safe: grains on different activations open files at once.
/// </remarks>
/// <param name="roots">Absolute folders outside which no data may be read (<see cref="TrainerOptions.DataRoots"/>); none: anywhere.</param>
public sealed class StoredFiles(string? where = null, IReadOnlyList<string>? roots = null)
{
    private readonly Lock _lock = new();
    // Keyed by full path: the embedded silo shares the files its client opened by the paths as typed (Trainer.Client's in-place data).
    private readonly Dictionary<(string Path, StoredFileKind Kind), StoredFile> _open = [];
    // The values check's outcome per file version: null when it passed, else the refusal's message.
    private readonly Dictionary<(string Path, long Size, DateTime Modified), string?> _verdicts = [];

    /// <summary>Where the files are read, for messages: " on silo S" (empty in the CLI).</summary>
    public string Where { get; } = where is null ? "" : $" on silo {where}";

    /// <summary>The same after a sentence about a file's values: " (read on silo S)" (empty in the CLI).</summary>
    public string ReadOn { get; } = where is null ? "" : $" (read on silo {where})";

    /// <summary>
    /// Refuses <paramref name="folder"/> (of the option <paramref name="field"/>, typed as <paramref name="value"/>)
    /// unless it lies under one of the roots this silo may read data from.
    /// </summary>
    public void RequireAllowed(string field, string value, string folder)
    {
        if (roots is not { Count: > 0 }) return;
        static string Normal(string path) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)) + Path.DirectorySeparatorChar;
        string full = Normal(folder);
        if (roots.Any(root => full.StartsWith(Normal(root), StringComparison.Ordinal))) return;
        throw new SpecException(field, value, $"data is read only under {string.Join(", ", roots)} (Trainer:DataRoots){Where}");
    }

    /// <summary>Takes <paramref name="path"/>, opened; hand it back with <see cref="Release"/>.</summary>
    public StoredFile Acquire(string path, StoredFileKind kind)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new SpecException("data", path, $"{path} does not exist{Where}");
        var key = (info.FullName, kind);
        lock (_lock)
        {
            if (_open.TryGetValue(key, out var open) && open.Size == info.Length && open.Modified == info.LastWriteTimeUtc)
            {
                open.Holders++;
                return open;
            }
        }
        // Opened outside the lock: a large .gz takes a while, and other files need not wait for it.
        var opened = StoredFile.Open(path, kind, info, Where, ReadOn);
        lock (_lock)
        {
            // Another reader may have opened it meanwhile: the one in the table wins, this one is dropped.
            if (_open.TryGetValue(key, out var open) && open.Size == opened.Size && open.Modified == opened.Modified)
            {
                opened.Dispose();
                open.Holders++;
                return open;
            }
            _open[key] = opened;
            opened.Holders++;
            return opened;
        }
    }

    /// <summary>Hands back a file from <see cref="Acquire"/>; the last holder's release unmaps or frees it.</summary>
    public void Release(StoredFile file)
    {
        lock (_lock)
        {
            if (--file.Holders > 0) return;
            var key = (file.FullPath, file.Kind);
            if (_open.TryGetValue(key, out var open) && open == file) _open.Remove(key);
        }
        file.Dispose();
    }

    /// <summary>
    /// Checks <paramref name="file"/>'s values as <paramref name="array"/> reads them (<see cref="StoredArray.Require"/>),
    /// once per file version: a refusal is a <see cref="SpecException"/> naming the file, row and column.
    /// </summary>
    public void RequireValues(StoredFile file, StoredArray array)
    {
        var key = (file.FullPath, file.Size, file.Modified);
        string? verdict;
        bool known;
        lock (_lock) known = _verdicts.TryGetValue(key, out verdict);
        if (!known)
        {
            try
            {
                array.Require(file.Path);
                verdict = null;
            }
            catch (FormatException e)
            {
                verdict = e.Message.TrimEnd('.');
            }
            lock (_lock) _verdicts[key] = verdict;
        }
        if (verdict is not null) throw new SpecException("data", file.Path, verdict + ReadOn);
    }

    /// <summary>How many files are open (tests).</summary>
    internal int OpenCount
    {
        get { lock (_lock) return _open.Count; }
    }
}
