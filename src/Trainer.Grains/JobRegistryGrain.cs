using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>The ids of the jobs submitted to this cluster, in submission order.</summary>
public sealed class JobRegistryGrain : Grain, IJobRegistryGrain
{
    private readonly List<string> _jobs = [];

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // NOTE: the registry must outlive idle periods or `trainer list` forgets jobs; it is tiny.
        DelayDeactivation(TimeSpan.FromDays(3650));
        return Task.CompletedTask;
    }

    public Task RegisterAsync(string jobId)
    {
        if (!_jobs.Contains(jobId)) _jobs.Add(jobId);
        return Task.CompletedTask;
    }

    public Task<string[]> ListAsync() => Task.FromResult(_jobs.ToArray());
}
