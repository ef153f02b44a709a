using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Memory;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// A parameter-server shard: one contiguous range of a job's flat parameters and that range's
/// optimizer state, stepped with the job's optimizer. The optimizers are element-wise, so a range
/// stepped here has the bits the whole model stepped in one place would have.
/// </summary>
/// <remarks>
/// Holds nothing durable: a shard lost with its silo answers that it stands nowhere, the step
/// fails, and the job restores its checkpoint (which the parameter server assembles from every shard).
/// </remarks>
[ShardPlacement]
public sealed class ParameterShardGrain(ComputeScheduler compute, IOptions<SiloMessagingOptions> messaging, ILogger<ParameterShardGrain> logger, ILocalSiloDetails silo,
    IdleMemory idle, JobSilos jobs)
    : Grain, IParameterShardGrain
{
    private TensorOffers? _offers;
    private ShardState? _state;
    private (int Step, TensorTransfer Answer)? _last;
    // The step's gradient when it is read from another silo, in the same array every step.
    private TensorPayload? _gradient;

    private TensorOffers Offers => _offers ??= TensorOffers.For(this, messaging.Value);

    private int Index => (int)this.GetPrimaryKeyLong(out _);

    public IAsyncEnumerable<TensorChunk> ReadOfferAsync(long offer, int maxChunkBytes, long from, long to) => Offers.ReadAsync(offer, maxChunkBytes, from, to);

    public async Task<TensorTransfer> LoadAsync(ShardLoad load)
    {
        // A silo hosting a job's grain may place one of them: Orleans forwards the messages of a grain that leaves with its silo.
        jobs.Remember(JobId, load.Spec.Gemm);
        var values = await Offers.ReceiveAsync(load.State);
        var range = Shard.Split(ParameterLayout.For(load.Spec.Model).Count, load.Spec.ResolvedParameterServerShards())[Index];
        _state = await compute.Run(() => ShardState.Create(load.Spec, range, values, load.StepsCompleted));
        _last = null;
        _gradient = null;
        Offers.Withdraw("parameters");
        Offers.Withdraw("state-parameters");
        Offers.Withdraw("state-slots");
        logger.LogInformation("Parameter-server shard {Shard} of job {Job}: parameters [{Start}, {End}) after step {Step} on silo {Silo}",
            Index, JobId, range.Start, range.End, load.StepsCompleted, silo.SiloAddress.Endpoint);
        return Offers.Send("parameters", _state.Parameters);
    }

    public async Task<TensorTransfer> StepAsync(int step, TensorTransfer gradient)
    {
        if (_last is { } last && last.Step == step) return last.Answer;
        var state = _state ?? throw new StateLostException($"Parameter-server shard {Index} of job {JobId} holds no parameters (it was re-activated); the job must restore its checkpoint.");
        if (state.StepsCompleted != step - 1)
            throw new StateLostException($"Parameter-server shard {Index} of job {JobId} stands after step {state.StepsCompleted}; step {step} cannot be applied.");
        var values = await Offers.ReceiveAsync(gradient, into: bytes => _gradient is { } reused && reused.Bytes.Length == bytes ? reused : _gradient = new TensorPayload(LargeArrays.New<byte>(bytes)));
        var parameters = await compute.Run(() => state.Step(step, values));
        var answer = Offers.Send("parameters", parameters);
        _last = (step, answer);
        return answer;
    }

    public Task<ShardModelState> GetStateAsync(int stepsCompleted)
    {
        var state = _state is { } held && held.StepsCompleted == stepsCompleted ? held
            : throw new StateLostException($"Parameter-server shard {Index} of job {JobId} holds no state after step {stepsCompleted} (it was re-activated, or stands elsewhere).");
        // NOTE: the shard's own buffers, not copies (a third of a 50M-parameter Adam model's state is 400 MB):
        // the parameter server reads them at once, and steps the shard only after.
        return Task.FromResult(new ShardModelState(Offers.Send("state-parameters", state.Parameters, once: true, keep: 2), Offers.Send("state-slots", state.Slots, once: true, keep: 2)));
    }

    public Task ReleaseAsync()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    // Counted while active: a process where none is gives its free memory back (IdleMemory).
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        idle.Enter();
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        idle.Exit();
        return Task.CompletedTask;
    }

    private string JobId
    {
        get
        {
            this.GetPrimaryKeyLong(out var jobId);
            return jobId!;
        }
    }
}

/// <summary>A shard's range in the job's precision, kept precision-blind for the grain.</summary>
internal abstract class ShardState
{
    public int StepsCompleted { get; protected set; }

    /// <summary>Steps the range from its gradient; the new parameters (job precision) in a payload that stays unchanged until the step after next.</summary>
    public abstract TensorPayload Step(int step, TensorPayload gradient);

    /// <summary>The range's parameters after the steps done (job precision): the buffer the last step wrote, unchanged until the step after next.</summary>
    public abstract TensorPayload Parameters { get; }

    /// <summary>The range's optimizer state (job precision), each slot's range one after another: the buffer the next step changes.</summary>
    public abstract TensorPayload Slots { get; }

    /// <param name="modelState">float64: the range's parameters, then (optionally: none means zero) its range of each state slot.</param>
    public static ShardState Create(TrainingSpec spec, Shard range, TensorPayload modelState, int stepsCompleted) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(spec, range, modelState, stepsCompleted),
        _ => new Typed<double>(spec, range, modelState, stepsCompleted),
    };

    private sealed class Typed<T> : ShardState where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly Optimizer<T> _optimizer;
        private readonly int _count;
        // The parameters in two payloads used in turn: one is being read by the parameter server while the next step writes the other.
        private readonly PayloadRing<T> _parameters;
        // Bytes, not T[], so that it can be offered as it is (Slots).
        private readonly TensorPayload _state;

        public Typed(TrainingSpec spec, Shard range, TensorPayload modelState, int stepsCompleted)
        {
            _optimizer = Optimizer<T>.For(spec);
            _count = range.Count;
            int slots = _optimizer.StateSlots;
            bool withState = modelState.Bytes.Length != (long)_count * sizeof(double);
            var values = modelState.ValuesOf<double>((withState ? 1 + slots : 1) * _count, "a parameter-server shard's model state");
            _parameters = new PayloadRing<T>(_count);
            _state = new TensorPayload(LargeArrays.New<byte>(checked(slots * _count * Unsafe.SizeOf<T>())));
            Precisions.Narrow<T>(values[.._count], _parameters.Current);
            if (withState) Precisions.Narrow<T>(values[_count..], State);
            StepsCompleted = stepsCompleted;
        }

        private Span<T> State => MemoryMarshal.Cast<byte, T>(_state.Bytes.AsSpan());

        public override TensorPayload Parameters => _parameters.CurrentPayload;

        public override TensorPayload Slots => _state;

        public override TensorPayload Step(int step, TensorPayload gradient)
        {
            var g = gradient.ValuesOf<T>(_count, "a parameter-server shard's gradient");
            _parameters.Current.CopyTo(_parameters.Other);
            _parameters.Swap();
            _optimizer.Step(step, _parameters.Current, g, State);
            StepsCompleted = step;
            return _parameters.CurrentPayload;
        }

    }
}
