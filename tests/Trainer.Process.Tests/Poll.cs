namespace Trainer.Process.Tests;

/// <summary>Waits for a condition by polling it, up to a deadline; never sleeps for a fixed time.</summary>
public static class Poll
{
    public static async Task<T> UntilAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan deadline, Func<T, string> describe)
    {
        var end = DateTime.UtcNow + deadline;
        while (true)
        {
            var value = await probe();
            if (done(value)) return value;
            if (DateTime.UtcNow > end) throw new TimeoutException($"Not reached within {deadline.TotalSeconds} s; last seen: {describe(value)}");
            await Task.Delay(TimeSpan.FromMilliseconds(200));
        }
    }
}
