using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// Runs in every silo: every few seconds it touches each running job, so a job grain lost with
/// its silo is re-activated on a survivor, where it reloads its record and resumes from its
/// latest checkpoint without anyone watching.
/// </summary>
public sealed class JobSupervisor(IGrainFactory grains, IOptions<TrainerOptions> options, ILogger<JobSupervisor> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.SupervisorPeriod);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var running = await grains.GetGrain<IJobRegistryGrain>(0).ListRunningAsync();
                await Task.WhenAll(running.Select(id => grains.GetGrain<ITrainingJobGrain>(id).GetStatusAsync()));
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // A silo failure makes some of these calls fail for a while; the next round tries again.
                logger.LogDebug("Job supervisor round failed: {Error}", e.Message);
            }
        }
    }
}
