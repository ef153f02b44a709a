using System.Collections.Concurrent;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// The step teams a silo's parameter servers are forming (one per silo): a server opens its team, its workers
/// (grains of the same silo) join it with their replicas, and the server starts it once all have joined. Only
/// the forming is kept here; a started team belongs to its server.
/// </summary>
public sealed class StepTeams
{
    private readonly ConcurrentDictionary<(string Job, long Generation), StepTeam> _forming = new();

    internal void Open(string job, StepTeam team) => _forming[(job, team.Generation)] = team;

    /// <summary>Worker <paramref name="rank"/> joins the team of the job's run <paramref name="generation"/>; none forming: the run is over or on another silo.</summary>
    internal IShardRun Join(string job, long generation, int rank, ShardReplica replica) =>
        _forming.TryGetValue((job, generation), out var team) ? team.Join(rank, replica)
            : throw new StateLostException($"Job {job}: no step team of run {generation} is forming on worker {rank}'s silo (the run ended, or the worker moved); its next step comes through Orleans.");

    /// <summary>The team is started or given up: no worker joins it any more.</summary>
    internal void Close(string job, long generation) => _forming.TryRemove((job, generation), out _);
}
