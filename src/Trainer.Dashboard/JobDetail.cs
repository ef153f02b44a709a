namespace Trainer.Dashboard;

/// <summary>
/// GET /api/jobs/{id}: the job's status, what it trains, its losses from ?from= on, its evaluations
/// (<see cref="EvalPoint"/>), and the silos its grains are active on.
/// </summary>
public sealed record JobDetail(
    JobStatusView Status,
    SpecSummary? Spec,
    string Data,
    string Init,
    LossSeries Losses,
    IReadOnlyList<EvalPoint> Evals,
    IReadOnlyList<GrainPlacement> Workers,
    IReadOnlyList<GrainPlacement> Grains);

/// <summary>
/// The losses of steps [From, Next), 1-based, each the loss before that step's update; at most
/// <see cref="DashboardApi.MaxLossesPerAnswer"/> per answer. Ask again with ?from=Next for the rest
/// and for steps still to come: a page that polls that way reads each loss once.
/// </summary>
public sealed record LossSeries(int From, int Next, IReadOnlyList<double> Values);

/// <summary>
/// Where one of a job's grains is active: <see cref="Grain"/> "worker" (with its <see cref="Rank"/>),
/// "job" or "parameter-server"; <see cref="Silo"/> "127.0.0.1:11112", or null when it is not active
/// (a finished job's workers are released).
/// </summary>
public sealed record GrainPlacement(string Grain, int? Rank, string? Silo);
