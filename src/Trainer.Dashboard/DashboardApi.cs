using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Trainer.Abstractions;
using Trainer.Core;
using Trainer.Grains;

namespace Trainer.Dashboard;

/// <summary>
/// The dashboard's JSON API. It only reads, and only through grain interfaces: the job registry,
/// each job grain's status and losses (both [AlwaysInterleave]: a read never waits for a step),
/// and Orleans' management grain for the silos and where a job's grains are active.
/// </summary>
public sealed class DashboardApi(IGrainFactory grains, ILocalSiloDetails silo, ISiloMetadataCache metadata)
{
    /// <summary>Most losses in one answer of GET /api/jobs/{id} (800 KB of JSON at most); read on with ?from=.</summary>
    public const int MaxLossesPerAnswer = 100_000;

    /// <summary>How long an answer waits for the silos to say where a job's grains are; past it they show as unknown (null).</summary>
    private static readonly TimeSpan PlacementWait = TimeSpan.FromSeconds(2);

    public const string Endpoints = "GET /api/jobs, GET /api/jobs/{id}[?from=STEP], GET /api/silos";

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/api/jobs", (DashboardApi api) => Answer(api.JobsAsync));
        app.MapGet("/api/jobs/{id}", (string id, HttpRequest request, DashboardApi api) => Answer(() => api.JobAsync(id, request.Query["from"])));
        app.MapGet("/api/silos", (DashboardApi api) => Answer(api.SilosAsync));
        app.Map("/api/{**rest}", (string? rest) =>
            Results.Json(new ApiError($"no such endpoint: /api/{rest}; the API has {Endpoints}"), DashboardJson.Options, statusCode: StatusCodes.Status404NotFound));
    }

    public async Task<IResult> JobsAsync()
    {
        var ids = await grains.GetGrain<IJobRegistryGrain>(0).ListAsync();
        // Every job's status at once: one interleaved call to each job grain.
        return Ok(await Task.WhenAll(ids.Select(RowAsync)));
    }

    private async Task<JobStatusView> RowAsync(string id)
    {
        try
        {
            return JobStatusView.Of(await grains.GetGrain<ITrainingJobGrain>(id).GetStatusAsync());
        }
        catch (Exception e) when (e is OrleansException or TimeoutException)
        {
            return JobStatusView.Unavailable(id, Failures.FirstLine(e.Message));
        }
    }

    /// <param name="from">The first step whose loss to answer (1-based; default 1).</param>
    public async Task<IResult> JobAsync(string id, string? from)
    {
        int first = 1;
        if (!string.IsNullOrEmpty(from) && (!int.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out first) || first < 1))
            return Error(StatusCodes.Status400BadRequest, ApiError.Of(new SpecException("from", from,
                "allowed: a whole number of at least 1, the first step whose loss to return, e.g. ?from=101 (leave it out for every loss)")));
        if (!JobIds.IsValid(id)) return JobNotFound(id);
        // Status and losses in one call; no long poll (wait 0): the page polls.
        var batch = await grains.GetGrain<ITrainingJobGrain>(id).GetLossesAsync(first, MaxLossesPerAnswer, TimeSpan.Zero);
        var status = batch.Status;
        if (status.State == JobState.Unknown) return JobNotFound(id);
        var (workers, others) = await PlacementsAsync(id, status.Spec?.Workers ?? 0);
        var losses = batch.Losses.ToArray();
        return Ok(new JobDetail(JobStatusView.Of(status), status.Spec is { } spec ? SpecSummary.Of(spec) : null,
            status.DataDescription, status.InitDescription,
            new LossSeries(batch.FromStep, batch.FromStep + losses.Length, losses),
            [.. (batch.Evals ?? []).Select(e => new EvalPoint(e.Step, e.Epoch, e.Split, e.Loss, e.Accuracy))], workers, others));
    }

    public async Task<IResult> SilosAsync()
    {
        var hosts = await grains.GetGrain<IManagementGrain>(0).GetDetailedHosts(onlyActive: false);
        var self = silo.SiloAddress;
        return Ok(hosts.OrderBy(h => h.SiloAddress.Endpoint.ToString(), StringComparer.Ordinal).ThenBy(h => h.SiloAddress.Generation)
            .Select(h => SiloView.Of(h, self, GemmKernels.Published(metadata, h.SiloAddress))).ToArray());
    }

    /// <summary>
    /// Where the job's workers (by rank), its job grain and its parameter server are active, from
    /// one question to every silo: all of its activations (so the cost does not grow with the job's
    /// worker count). Best effort: a silo that does not answer in time leaves them unknown.
    /// </summary>
    private async Task<(GrainPlacement[] Workers, GrainPlacement[] Others)> PlacementsAsync(string id, int workers)
    {
        Dictionary<GrainId, SiloAddress> active = [];
        try
        {
            var statistics = await grains.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics().WaitAsync(PlacementWait);
            foreach (var s in statistics) active.TryAdd(s.GrainId, s.SiloAddress);
        }
        catch (Exception e) when (e is OrleansException or TimeoutException)
        {
            // Unknown placements show as null; the rest of the answer stands.
        }
        string? Where(IAddressable grain) => active.TryGetValue(grain.GetGrainId(), out var at) ? at.Endpoint.ToString() : null;
        return (
            [.. Enumerable.Range(0, workers).Select(rank => new GrainPlacement("worker", rank, Where(grains.GetGrain<IWorkerGrain>(rank, id, null))))],
            [new GrainPlacement("job", null, Where(grains.GetGrain<ITrainingJobGrain>(id))),
             new GrainPlacement("parameter-server", null, Where(grains.GetGrain<IParameterServerGrain>(id)))]);
    }

    private static IResult JobNotFound(string id) =>
        Error(StatusCodes.Status404NotFound, new ApiError(JobStatus.NotFound(id).Message!, "id", id, "the id of a job submitted to this cluster (see GET /api/jobs)"));

    private static IResult Ok<T>(T value) => Results.Json(value, DashboardJson.Options);

    

    private static IResult Error(int status, ApiError error) => Results.Json(error, DashboardJson.Options, statusCode: status);

    /// <summary>A cluster that does not answer (a silo starting, stopping or lost) is a 503 naming why, not a 500 with a stack trace.</summary>
    private static async Task<IResult> Answer(Func<Task<IResult>> read)
    {
        try
        {
            return await read();
        }
        catch (Exception e) when (e is OrleansException or TimeoutException)
        {
            return Error(StatusCodes.Status503ServiceUnavailable, new ApiError($"the cluster did not answer: {Failures.FirstLine(e.Message)}"));
        }
    }
}
