using Microsoft.Extensions.Logging;

namespace Trainer.Grains;

/// <summary>
/// A warning that a flood would repeat (connections refused on an open port): the first goes out,
/// then at most one per <paramref name="period"/>, saying how many like it were not logged, so a
/// flood of 10,000 a second costs a line every few seconds, not the disk.
/// </summary>
internal sealed class ThrottledWarning(ILogger logger, string subject, TimeSpan period)
{
    private readonly Lock _gate = new();
    private DateTime _next = DateTime.MinValue;
    private long _unlogged;

    public void Warn(string what, Exception? e = null)
    {
        long unlogged;
        lock (_gate)
        {
            var now = DateTime.UtcNow;
            if (now < _next)
            {
                _unlogged++;
                return;
            }
            (unlogged, _unlogged, _next) = (_unlogged, 0, now + period);
        }
        if (unlogged == 0) logger.LogWarning(e, "{Subject}: {Event}", subject, what);
        else logger.LogWarning(e, "{Subject}: {Event} ({Unlogged} more like it since the last such warning were not logged)", subject, what, unlogged);
    }
}
