using System.Numerics;
using System.Numerics.Tensors;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// <see cref="Elementwise"/>: an element's result depends on its argument alone, not on its
/// neighbours, the span's length or where the span lies in memory; and it is TensorPrimitives' own
/// vector result wherever that one is context-free (so no recorded reference moves).
/// </summary>
public class ElementwiseTests
{
    public enum Op { Exp, Log, Sigmoid, Tanh }

    public static TheoryData<Op> Ops() => [Op.Exp, Op.Log, Op.Sigmoid, Op.Tanh];

    // Arguments in range, past every vector kernel's range, and the special values.
    private static readonly double[] Special = [-1e6, -800, -745.5, -720, -708.5, -400, -354.5, 354.5, 400, 708.5, 720, 800, 1e6,
        double.NegativeInfinity, double.PositiveInfinity, double.NaN, 0.0, -0.0, 1e-310];

    [Theory]
    [MemberData(nameof(Ops))]
    public void TensorPrimitives_GivesAnElementOtherBits_NextToAnOutOfRangeNeighbour_OrAlone(Op op)
    {
        // Why Elementwise exists: the same argument, two contexts, two results (float64). If this fails
        // after a System.Numerics.Tensors upgrade, the fallback is gone and Elementwise may be too.
        var x = TestArrays.Normal(4096, seed: 1, std: 3);
        if (op == Op.Log) TensorPrimitives.Abs(x, x);
        var alone = new double[1];
        int partedByNeighbour = 0, partedAlone = 0;
        for (int i = 0; i < x.Length; i += 8)
        {
            var block = x.AsSpan(i, 8).ToArray();
            var plain = new double[8];
            Raw(op, block, plain);
            block[7] = op == Op.Log ? double.NaN : 800;
            var beside = new double[8];
            Raw(op, block, beside);
            for (int j = 0; j < 7; j++) if (BitConverter.DoubleToInt64Bits(plain[j]) != BitConverter.DoubleToInt64Bits(beside[j])) partedByNeighbour++;
            Raw(op, block.AsSpan(0, 1), alone);
            if (alone[0] != plain[0]) partedAlone++;
        }
        Assert.True(partedAlone > 0, "a one-element span gave the vector kernel's bits for all 512 arguments");
        if (op != Op.Log) Assert.True(partedByNeighbour > 0, "no element's bits moved next to an out-of-range argument");
    }

    [Theory]
    [MemberData(nameof(Ops))]
    public void AnElementsBits_DependOnItsArgumentAlone_WhateverItsNeighboursSpanLengthAndAddress_Float64(Op op) =>
        AssertContextFree<double>(op, v => v);

    [Theory]
    [MemberData(nameof(Ops))]
    public void AnElementsBits_DependOnItsArgumentAlone_WhateverItsNeighboursSpanLengthAndAddress_Float32(Op op) =>
        AssertContextFree<float>(op, v => (float)v);

    [Theory]
    [MemberData(nameof(Ops))]
    public void InRangeArguments_GetTensorPrimitivesOwnVectorBits(Op op)
    {
        var x = TestArrays.Normal(1003, seed: 2, std: 4);
        if (op == Op.Log) TensorPrimitives.Abs(x, x);
        var expected = new double[x.Length];
        Raw(op, x, expected);
        var actual = new double[x.Length];
        Apply(op, x, actual);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void OutOfRangeArguments_GetTheirCorrectlyRoundedValues()
    {
        double[] x = [-800, -720, -708.5, 708.5, 720, double.NegativeInfinity, double.PositiveInfinity, double.NaN];
        var y = new double[x.Length];
        Elementwise.Sigmoid<double>(x, y);
        // Below -708, 1 + e^x rounds to 1, so sigmoid(x) is e^x: subnormal at -720, not 0.
        Assert.Equal([0, Math.Exp(-720), Math.Exp(-708.5), 1, 1, 0, 1, double.NaN], y);
        Assert.True(y[1] > 0);
        Elementwise.Tanh<double>([-400, 400, double.NaN], y.AsSpan(0, 3));
        Assert.Equal([-1, 1, double.NaN], y[..3]);
        Elementwise.Exp<double>([-800, 720, 709.5], y.AsSpan(0, 3));
        Assert.Equal([0, double.PositiveInfinity, Math.Exp(709.5)], y[..3]);
    }

    [Fact]
    public void InPlace_GivesTheOutOfPlaceBits()
    {
        var x = TestArrays.Normal(300, seed: 3, std: 400);
        var expected = new double[x.Length];
        Elementwise.Sigmoid<double>(x, expected);
        Elementwise.Sigmoid<double>(x, x);
        Assert.Equal(expected, x);
    }

    [Fact]
    public void ADivergingJob_IsBitIdenticalRunToRun_WhereverItsBuffersLie()
    {
        // lr 1e-3 blows this model up: by step 3 hidden pre-activations pass -1000. Each trainer's buffers
        // start at another address (the arrays allocated in between shift them); with TensorPrimitives'
        // sigmoid 4 of 5 such runs parted from the first in the last place.
        var spec = new TrainingSpec { Model = new ModelSpec([200, 400, 10]), Batch = 200, LearningRate = 1e-3, Workers = 3 };
        var data = Synthetic.Data(spec.Batch, 200, 10, spec.Seed);
        var shifts = new List<double[]>();
        var runs = new List<(double[] Losses, double[] Parameters)>();
        for (int run = 0; run < 6; run++)
        {
            shifts.Add(new double[2 * run + 1]);
            var trainer = new LocalTrainer(spec, data, Initializer.Create(ParameterLayout.For(spec.Model), spec.Init, spec.Seed));
            var losses = new double[8];
            for (int t = 0; t < losses.Length; t++) losses[t] = trainer.Step();
            runs.Add((losses, trainer.Parameters));
        }
        Assert.True(runs[0].Losses[^1] > 1e20, $"the check needs a job that diverges; final loss {runs[0].Losses[^1]}");
        foreach (var (losses, parameters) in runs.Skip(1))
        {
            Assert.Equal(runs[0].Losses, losses);
            Assert.Equal(runs[0].Parameters, parameters);
        }
        GC.KeepAlive(shifts);
    }

    private static void AssertContextFree<T>(Op op, Func<double, T> from) where T : IFloatingPointIeee754<T>
    {
        var random = new Random(4);
        var arguments = TestArrays.Normal(2000, seed: 5, std: 300).Concat(Special).Select(from).ToArray();
        if (op == Op.Log) arguments = [.. arguments.Select(T.Abs)];
        // Each argument alone: a one-element span.
        var alone = new T[arguments.Length];
        for (int i = 0; i < arguments.Length; i++) Apply(op, arguments.AsSpan(i, 1), alone.AsSpan(i, 1));
        // The same arguments in shuffled long spans, at each of 8 offsets, and in short spans of 2-9.
        for (int trial = 0; trial < 8; trial++)
        {
            var order = Enumerable.Range(0, arguments.Length).OrderBy(_ => random.Next()).ToArray();
            var buffer = new T[arguments.Length + 8];
            for (int i = 0; i < order.Length; i++) buffer[trial + i] = arguments[order[i]];
            var span = buffer.AsSpan(trial, arguments.Length);
            Apply(op, span, span);
            for (int i = 0; i < order.Length; i++) AssertSameBits(alone[order[i]], span[i], op, arguments[order[i]]);

            int length = 2 + trial;
            var small = new T[length];
            for (int start = 0; start + length <= order.Length; start += length)
            {
                for (int j = 0; j < length; j++) small[j] = arguments[order[start + j]];
                Apply(op, small, small);
                for (int j = 0; j < length; j++) AssertSameBits(alone[order[start + j]], small[j], op, arguments[order[start + j]]);
            }
        }
    }

    private static void AssertSameBits<T>(T expected, T actual, Op op, T argument) where T : IFloatingPointIeee754<T>
    {
        if (!(expected.Equals(actual) && T.IsNegative(expected) == T.IsNegative(actual)))
            Assert.Fail($"{op}({argument:R}) gave {actual:R} in a span and {expected:R} alone");
    }

    private static void Apply<T>(Op op, ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        switch (op)
        {
            case Op.Exp: Elementwise.Exp(x, y); break;
            case Op.Log: Elementwise.Log(x, y); break;
            case Op.Sigmoid: Elementwise.Sigmoid(x, y); break;
            default: Elementwise.Tanh(x, y); break;
        }
    }

    private static void Raw(Op op, ReadOnlySpan<double> x, Span<double> y)
    {
        switch (op)
        {
            case Op.Exp: TensorPrimitives.Exp(x, y); break;
            case Op.Log: TensorPrimitives.Log(x, y); break;
            case Op.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;
            default: TensorPrimitives.Tanh(x, y); break;
        }
    }
}
