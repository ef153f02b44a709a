using Trainer.Abstractions;
using Trainer.Core;

namespace Trainer.Client;

/// <summary>Reads every loss and evaluation a job on a cluster has recorded so far into a <see cref="LossSeries"/> named after the job.</summary>
internal sealed class JobLossReader(ClusterRetry retry)
{
    /// <summary>The most the job grain answers per call; larger histories are read on in further calls.</summary>
    private const int MaxPerCall = 1 << 20;

    public async Task<LossSeries> ReadAsync(ITrainingJobGrain job, string jobId, CancellationToken cancellation)
    {
        var steps = new List<int>();
        var losses = new List<double>();
        var evals = new List<EvalPoint>();
        int next = 1;
        while (true)
        {
            int from = next;
            var batch = await retry.RunAsync(() => job.GetLossesAsync(from, MaxPerCall, TimeSpan.Zero), cancellation);
            if (batch.Status.State == JobState.Unknown)
                throw Commands.UnknownJob(jobId);
            var values = batch.Losses.Values;
            for (int i = 0; i < values.Length; i++)
            {
                steps.Add(batch.FromStep + i);
                losses.Add(values[i]);
            }
            evals.AddRange((batch.Evals ?? []).Select(e => new EvalPoint(e.Step, e.Epoch, e.Split, e.Loss, e.Accuracy)));
            next = batch.FromStep + values.Length;
            if (values.Length == 0 || next > batch.Status.StepsCompleted) break;
        }
        if (steps.Count == 0)
            throw new SpecException("job", jobId, "it has no losses yet; plot it once it has run a step");
        return new LossSeries(jobId, [.. steps], [.. losses], evals);
    }
}
