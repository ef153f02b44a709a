using System.Net.Sockets;
using System.Reflection;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;
using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>What a failed step calls for (<see cref="Failures.Classify"/>). Ordered: the worst kind wins.</summary>
public enum FailureKind
{
    /// <summary>
    /// The call did not reach its grain or had no answer in time: a silo died or is being declared
    /// dead, a connection failed, a timeout. Calling again may reach a re-activated grain; the job
    /// restores its checkpoint and replays.
    /// </summary>
    Retry,

    /// <summary>
    /// The state the step needs is gone or its run broke: a grain re-activated empty, a link between
    /// workers broke, storage failed. The job restores its checkpoint and replays.
    /// </summary>
    Restore,

    /// <summary>
    /// A replay would fail the same way: a bug in the step code, data or a spec no silo can run, out
    /// of memory. The job fails at once.
    /// </summary>
    Fatal,
}

/// <summary>
/// The one place that decides whether a failure is the infrastructure's (retried, or restored and
/// replayed) or one that no replay can fix (the job fails at once, with the exception in the silo
/// log and its message in the job's status). docs/operations.md lists the classes.
/// </summary>
/// <remarks>
/// Infrastructure is named, everything else is fatal: an exception nobody expected is a bug, and a
/// bug replayed for minutes only hides it. Exceptions keep their type across grain calls (Orleans
/// serializes them with their stack), so a worker's bug is classified the same at the job grain.
/// </remarks>
public static class Failures
{
    public static FailureKind Classify(Exception e) => Decide(e).Kind;

    /// <summary>The exception that decided <see cref="Classify"/>: the worst inside an AggregateException, or what a wrapper carried.</summary>
    public static Exception Cause(Exception e) => Decide(e).Cause;

    /// <summary>"TypeName: message" of the <see cref="Cause"/>, as a job's status shows it: the message's <see cref="FirstLine"/> (the log has the rest).</summary>
    public static string Describe(Exception e)
    {
        var cause = Cause(e);
        return $"{cause.GetType().Name}: {FirstLine(cause.Message)}";
    }

    /// <summary>An exception message's first line: Orleans puts a wrapped exception's whole text, stack and all, into its own.</summary>
    public static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();

    private static (FailureKind Kind, Exception Cause) Decide(Exception e) => e switch
    {
        // The worst of all: a bug beside the broken links it caused is still a bug.
        AggregateException { InnerExceptions.Count: > 0 } all => all.InnerExceptions.Select(Decide).MaxBy(d => d.Kind),
        TargetInvocationException or TypeInitializationException when e.InnerException is { } inner => Decide(inner),
        // Orleans' storage bridge wraps a storage provider's failure in a plain OrleansException.
        { InnerException: { } inner } when e.GetType() == typeof(OrleansException) => Decide(inner),
        // OperationCanceledException: Orleans answers a call with it when the grain-directory lookup that
        // routes it is cancelled by a membership change, i.e. exactly while a dead silo is being removed.
        OrleansMessageRejectionException or ConnectionFailedException or TimeoutException or OperationCanceledException => (FailureKind.Retry, e),
        // ObjectDisposedException: a link or listener closed under a window (its silo is stopping).
        StateLostException or IOException or SocketException or ObjectDisposedException or OrleansException => (FailureKind.Restore, e),
        _ when IsStorage(e) => (FailureKind.Restore, e),
        _ => (FailureKind.Fatal, e),
    };

    // Storage providers' own exceptions (Redis: Orleans.Persistence.Redis, StackExchange.Redis), not referenced here.
    private static bool IsStorage(Exception e) =>
        e.GetType().Namespace is { } ns && (ns.StartsWith("Orleans.Persistence", StringComparison.Ordinal) || ns.StartsWith("Orleans.Storage", StringComparison.Ordinal)
            || ns.StartsWith("StackExchange.Redis", StringComparison.Ordinal));
}
