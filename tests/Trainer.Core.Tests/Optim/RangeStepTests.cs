using System.Numerics;
using System.Numerics.Tensors;
using Trainer.Core.Optim;

namespace Trainer.Core.Tests.Optim;

/// <summary>
/// An optimizer is element-wise: a range cut into pieces, each stepped with its own slice of the
/// gradient and its own state (slot after slot over the piece), ends with exactly the bits of one
/// whole-range step, whatever the cut (vector tails, the 512-element scratch pieces, odd offsets).
/// This is what lets a parameter-server shard or a split worker step its range alone; the state's slots
/// may also lie apart, each a tensor of its own (a parameter server's), with the same bits.
/// </summary>
public class RangeStepTests
{
    private const int Length = 1500, Steps = 5;

    public static TheoryData<OptimizerKind, double> Rules => new()
    {
        { OptimizerKind.Sgd, 0 }, { OptimizerKind.Sgd, 0.1 },
        { OptimizerKind.Momentum, 0 }, { OptimizerKind.Momentum, 0.1 },
        { OptimizerKind.Nesterov, 0 }, { OptimizerKind.Nesterov, 0.1 },
        { OptimizerKind.Adam, 0 }, { OptimizerKind.Adam, 0.1 },
        { OptimizerKind.AdamW, 0 }, { OptimizerKind.AdamW, 0.1 },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void SteppingARangeInPieces_GivesTheBitsOfOneWholeStep_InFloat64(OptimizerKind kind, double decay) =>
        Compare<double>(kind, decay, x => x);

    [Theory]
    [MemberData(nameof(Rules))]
    public void SteppingARangeInPieces_GivesTheBitsOfOneWholeStep_InFloat32(OptimizerKind kind, double decay) =>
        Compare<float>(kind, decay, x => (float)x);

    private static readonly int[][] Cuts = [[700], [1, 513], [333, 1024], [7, 8, 1499]];

    private static void Compare<T>(OptimizerKind kind, double decay, Func<double, T> narrow) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var spec = new OptimizerSpec { Kind = kind, WeightDecay = decay, Schedule = ScheduleKind.Cosine, WarmupSteps = 2 };
        var optimizer = Optimizers.Create<T>(spec, 0.01, Steps);
        int slots = optimizer.StateSlots;
        var initial = TestArrays.Normal(Length, seed: 1).Select(narrow).ToArray();
        var gradients = Enumerable.Range(0, Steps).Select(s => TestArrays.Normal(Length, seed: 10 + s, std: 3).Select(narrow).ToArray()).ToArray();

        var whole = (T[])initial.Clone();
        var wholeState = new T[slots * Length];
        for (int t = 1; t <= Steps; t++) optimizer.Step(t, whole, gradients[t - 1], wholeState);
        Assert.NotEqual(initial, whole);

        foreach (var cut in Cuts)
        {
            int[] bounds = [0, .. cut, Length];
            var pieces = (T[])initial.Clone();
            var states = bounds.Skip(1).Select((end, i) => new T[slots * (end - bounds[i])]).ToArray();
            for (int t = 1; t <= Steps; t++)
                for (int i = 0; i < states.Length; i++)
                {
                    int start = bounds[i], count = bounds[i + 1] - start;
                    optimizer.Step(t, pieces.AsSpan(start, count), gradients[t - 1].AsSpan(start, count), states[i]);
                }
            Assert.Equal(whole, pieces);
            // The pieces' state, put back slot after slot over the whole range, is the whole step's state.
            var state = new T[slots * Length];
            for (int k = 0; k < slots; k++)
                for (int i = 0; i < states.Length; i++)
                {
                    int start = bounds[i], count = bounds[i + 1] - start;
                    states[i].AsSpan(k * count, count).CopyTo(state.AsSpan(k * Length + start, count));
                }
            Assert.Equal(wholeState, state);
        }

        // The same pieces stepped with each slot a tensor of the whole range's length (as a parameter server holds
        // them), each piece passing its slice of every slot: the same bits again, the state slot by slot.
        foreach (var cut in Cuts)
        {
            int[] bounds = [0, .. cut, Length];
            var pieces = (T[])initial.Clone();
            var first = new T[slots > 0 ? Length : 0];
            var second = new T[slots > 1 ? Length : 0];
            for (int t = 1; t <= Steps; t++)
                for (int i = 0; i + 1 < bounds.Length; i++)
                {
                    int start = bounds[i], count = bounds[i + 1] - start;
                    optimizer.Step(t, pieces.AsSpan(start, count), gradients[t - 1].AsSpan(start, count),
                        slots > 0 ? first.AsSpan(start, count) : [], slots > 1 ? second.AsSpan(start, count) : []);
                }
            Assert.Equal(whole, pieces);
            Assert.Equal(wholeState, first.Concat(second).ToArray());
        }
    }

    [Fact]
    public void SlotsApartOfTheWrongLength_AreRefused_NamingTheRuleAndTheLengths()
    {
        var adam = Optimizers.Create<double>(new OptimizerSpec { Kind = OptimizerKind.Adam }, 0.01, Steps);

        var error = Assert.Throws<ArgumentException>(() => adam.Step(1, new double[4], new double[4], new double[4], new double[3]));

        Assert.Contains("adam keeps 2 state value(s) per parameter: the slots have 4 and 3 values for 4 parameters", error.Message);
    }
}
