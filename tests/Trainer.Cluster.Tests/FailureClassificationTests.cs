using System.Net.Sockets;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;
using Orleans.Serialization;
using Orleans.Storage;
using Trainer.Abstractions;
using Trainer.Core;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Which failures a job replays and which fail it at once (<see cref="Failures"/>): the
/// infrastructure's are retried or restored, everything else is a failure no replay can fix.
/// </summary>
public sealed class FailureClassificationTests
{
    [Fact]
    public void BugsBadDataSpecErrorsAndOutOfMemory_AreFatal()
    {
        Exception[] fatal =
        [
            new InvalidOperationException("a bug"), new ArgumentException("a bug"), new ArgumentOutOfRangeException("x"), new IndexOutOfRangeException(),
            new NullReferenceException(), new OverflowException(), new DivideByZeroException(), new InvalidCastException(), new NotSupportedException(),
            new KeyNotFoundException(), new InvalidDataException("a block of the wrong step"), new SpecException("batch", 0, "at least 1"),
            new OutOfMemoryException(), new CodecNotFoundException("no codec"), new Exception("anything nobody expected"),
        ];
        Assert.All(fatal, e => Assert.Equal(FailureKind.Fatal, Failures.Classify(e)));
    }

    [Fact]
    public void LostSilosTimeoutsAndFailedConnections_AreRetried()
    {
        Exception[] retried =
        [
            new SiloUnavailableException("the silo died"), new TimeoutException(), new ConnectionFailedException("refused"),
            new OperationCanceledException("directory lookup cancelled"), new TaskCanceledException(),
        ];
        Assert.All(retried, e => Assert.Equal(FailureKind.Retry, Failures.Classify(e)));
    }

    [Fact]
    public void LostStateBrokenLinksAndStorageFailures_RestoreTheCheckpoint()
    {
        Exception[] restored =
        [
            new StateLostException("the parameter server was re-activated"), new IOException("the link to worker 1 broke"), new EndOfStreamException(),
            new SocketException((int)SocketError.ConnectionReset), new ObjectDisposedException("link"), new InconsistentStateException("etag"),
            new OrleansException("no silo can host the grain"),
        ];
        Assert.All(restored, e => Assert.Equal(FailureKind.Restore, Failures.Classify(e)));
    }

    [Fact]
    public void Wrappers_AreClassifiedByWhatTheyCarry_AndTheWorstOfSeveralWins()
    {
        // A worker's bug beside the broken links it caused in its peers.
        var bug = new OverflowException("Arithmetic operation resulted in an overflow.");
        var both = new AggregateException(new IOException("the link to worker 1 broke"), bug, new TimeoutException());
        Assert.Equal(FailureKind.Fatal, Failures.Classify(both));
        Assert.Same(bug, Failures.Cause(both));
        Assert.Equal("OverflowException: Arithmetic operation resulted in an overflow.", Failures.Describe(both));

        Assert.Equal(FailureKind.Restore, Failures.Classify(new AggregateException(new TimeoutException(), new IOException())));
        // Orleans' storage bridge wraps a provider's failure in a plain OrleansException.
        Assert.Equal(FailureKind.Restore, Failures.Classify(new OrleansException("Error from storage provider", new SocketException((int)SocketError.TimedOut))));
        Assert.Equal(FailureKind.Fatal, Failures.Classify(new OrleansException("Error from storage provider", new ArgumentException("a serializer bug"))));
        Assert.Equal(FailureKind.Fatal, Failures.Classify(new TargetInvocationException(new NullReferenceException())));
    }

    [Fact]
    public void AnExceptionThatCrossedAGrainCall_KeepsItsType_ItsKind_AndTheStackWhereItWasThrown()
    {
        // Orleans carries exceptions between silos with its serializer; the job grain classifies what arrives.
        var serializer = new ServiceCollection().AddSerializer(b => b.AddAssembly(typeof(StateLostException).Assembly)).BuildServiceProvider().GetRequiredService<Serializer>();
        foreach (var thrown in new[] { Thrown(() => throw new StateLostException("worker 1 lost its share")), Thrown(() => checked(int.MaxValue + Environment.ProcessorCount)) })
        {
            var arrived = serializer.Deserialize<Exception>(serializer.SerializeToArray(thrown));

            Assert.IsType(thrown.GetType(), arrived);
            Assert.Equal(thrown.Message, arrived.Message);
            Assert.Equal(Failures.Classify(thrown), Failures.Classify(arrived));
            Assert.Contains(nameof(Thrown), arrived.StackTrace);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Exception Thrown(Func<int> step)
    {
        try
        {
            step();
        }
        catch (Exception e)
        {
            return e;
        }
        throw new InvalidOperationException("the step did not throw");
    }
}
