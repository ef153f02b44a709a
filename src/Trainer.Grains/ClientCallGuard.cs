using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// Keeps clients to the cluster's public face: a call from a client through a gateway may reach a
/// job's grain (<see cref="ITrainingJobGrain"/>: submit, upload, status, losses, weights, cancel) and
/// the job registry's <see cref="IJobRegistryGrain.ListAsync"/>; Trainer's other grains (workers,
/// parameter servers and shards, datasets, stores, the registry's other methods) refuse it with an
/// <see cref="UnauthorizedAccessException"/> naming the method. Calls from grains and from code
/// running inside a silo (its hosted client: the job supervisor, the dashboard, the CLI's embedded
/// silo) pass, and so do calls to Orleans' own system targets and grains, which its client needs
/// (the cluster's manifest) or which are Orleans' management surface (IManagementGrain).
/// </summary>
/// <remarks>
/// NOTE: a call's source is the id its sender wrote into the message, and Orleans' gateway does not
/// check it, so this stops clients built on Orleans' client library (which writes its own client id),
/// not one that forges message headers. Whoever can connect at all holds the cluster's certificate in
/// a TLS cluster (docs/operations.md, "TLS and authentication"): TLS is the boundary, this is the fence
/// inside it.
/// </remarks>
public sealed class ClientCallGuard(ILogger<ClientCallGuard> logger) : IIncomingGrainCallFilter
{
    private readonly ThrottledWarning _refused = new(logger, "A client's call to an internal grain was refused", LinkListener.WarningPeriod);

    public Task Invoke(IIncomingGrainCallContext context)
    {
        if (!FromClient(context.SourceId) || IsPublic(context)) return context.Invoke();
        var method = $"{context.InterfaceName}.{context.MethodName}";
        _refused.Warn($"{method} on {context.TargetId} from {context.SourceId}");
        throw new UnauthorizedAccessException(
            $"{method} is internal to the Trainer cluster: clients may call only a job's grain (ITrainingJobGrain) and the job registry's {nameof(IJobRegistryGrain.ListAsync)}.");
    }

    /// <summary>Whether <paramref name="source"/> is a client outside the cluster: not a grain, and not a silo's own (hosted) client.</summary>
    internal static bool FromClient(GrainId? source) =>
        source is not { } id || (id.IsClient() && !id.Key.ToString().StartsWith(HostedClientPrefix, StringComparison.Ordinal));

    // NOTE: Orleans names a silo's hosted client "hosted-<silo address>" (HostedClient.CreateHostedClientGrainId in Orleans.Runtime).
    private const string HostedClientPrefix = "hosted-";

    private static bool IsPublic(IIncomingGrainCallContext context) => context.TargetContext.GrainInstance switch
    {
        // Every method, including those of grain extensions on it (IAsyncEnumerable reads of the weights it offers).
        ITrainingJobGrain => true,
        IJobRegistryGrain => context.MethodName == nameof(IJobRegistryGrain.ListAsync),
        { } grain => grain.GetType().Assembly != typeof(ClientCallGuard).Assembly,
        null => true,   // a system target of Orleans'
    };
}
