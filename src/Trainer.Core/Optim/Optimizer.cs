using System.Numerics;
using Trainer.Core.Training;

namespace Trainer.Core.Optim;

/// <summary>
/// An update rule in precision T, element-wise: it steps any contiguous range of the model's flat
/// parameters with that range's gradient and that range's optimizer state, so a parameter-server
/// shard that owns a range steps it alone, with the same bits as a whole-model step.
/// </summary>
/// <remarks>
/// State is <see cref="StateSlots"/> buffers of the range's length (momentum: the buffer b; Adam: m then v),
/// laid out slot after slot in one span or passed apart, zero before the first step. The step number t
/// (1-based, the job's step) drives the schedule and Adam's bias correction, so the state holds no
/// counter and a checkpoint is parameters + state + t.
/// <para>
/// Every per-step scalar (the learning rate, 1-β, bias corrections) is computed in float64 and
/// rounded to T once, as PyTorch rounds a Python float for a float32 tensor; every element then
/// gets the same sequence of correctly rounded TensorPrimitives operations, whatever its position,
/// so how a range is cut never changes a bit.
/// </para>
/// </remarks>
public abstract class Optimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>
    /// Elements per piece when a rule needs scratch space (a decayed gradient, Adam's denominator):
    /// the scratch lives on the stack, so a step allocates nothing and a shared optimizer may step
    /// disjoint ranges on several threads at once. Element-wise, so the piece size changes no bits.
    /// </summary>
    protected const int Piece = 512;

    protected Optimizer(OptimizerSpec spec, double learningRate, int steps)
    {
        Spec = spec;
        BaseLearningRate = learningRate;
        Steps = steps;
    }

    public OptimizerSpec Spec { get; }

    /// <summary>The spec's learning rate, before the schedule.</summary>
    public double BaseLearningRate { get; }

    /// <summary>The job's step count (the cosine schedule's horizon).</summary>
    public int Steps { get; }

    /// <summary>State values per parameter.</summary>
    public int StateSlots => Spec.StateSlots;

    /// <summary>The learning rate of step <paramref name="step"/> (1-based) after warm-up and schedule.</summary>
    public double LearningRate(int step) => LearningRates.At(Spec, BaseLearningRate, Steps, step);

    /// <summary>
    /// Step <paramref name="step"/> on one range: <paramref name="parameters"/> and <paramref name="gradient"/>
    /// of equal length n, <paramref name="state"/> of length <see cref="StateSlots"/>·n.
    /// </summary>
    public void Step(int step, Span<T> parameters, ReadOnlySpan<T> gradient, Span<T> state)
    {
        Optimizers.CheckState(Spec, state.Length, parameters.Length, nameof(state));
        int n = parameters.Length;
        Step(step, parameters, gradient, StateSlots > 0 ? state[..n] : [], StateSlots > 1 ? state.Slice(n, n) : []);
    }

    /// <summary>
    /// The same step on a range whose state slots lie apart, each of the range's length n (<paramref name="first"/>:
    /// momentum's buffer, Adam's m; <paramref name="second"/>: Adam's v; empty where the rule keeps no such slot),
    /// as a parameter server holding each slot as one tensor of the whole model passes them.
    /// </summary>
    public void Step(int step, Span<T> parameters, ReadOnlySpan<T> gradient, Span<T> first, Span<T> second)
    {
        if (step < 1 || step > Steps)
            throw new ArgumentOutOfRangeException(nameof(step), step, $"Steps are numbered from 1 to the job's {Steps}.");
        int n = parameters.Length;
        if (gradient.Length != n)
            throw new ArgumentException($"gradient has {gradient.Length} elements, parameters {n}.", nameof(gradient));
        if (first.Length != (StateSlots > 0 ? n : 0) || second.Length != (StateSlots > 1 ? n : 0))
            throw new ArgumentException($"{Spec.Name} keeps {StateSlots} state value(s) per parameter: the slots have {first.Length} and {second.Length} values for {n} parameters.", nameof(first));
        StepSlots(step, parameters, gradient, first, second);
    }

    /// <summary>The rule's step on one range, every buffer checked to the range's length (the slots it keeps; the others empty).</summary>
    protected abstract void StepSlots(int step, Span<T> parameters, ReadOnlySpan<T> gradient, Span<T> first, Span<T> second);

    /// <summary>The job's optimizer in precision T.</summary>
    public static Optimizer<T> For(TrainingSpec spec) => Optimizers.Create<T>(spec.Optimizer, spec.LearningRate, spec.Steps);

    /// <summary>A float64 scalar in the step's precision (rounded once, to nearest).</summary>
    protected static T Of(double value) => T.CreateTruncating(value);
}
