using System.Runtime.InteropServices;
using MathNet.Numerics.Distributions;
using MathNet.Numerics.Random;
using Trainer.Core.Data;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// <see cref="NormalDraws"/> and <see cref="Synthetic"/> against MathNet's own sampler, the definition of
/// the seed job's data and of every job's drawn weights: the same bits, fill after fill on one stream.
/// </summary>
public class NormalDrawsTests
{
    // Lengths around MathNet's cases: empty, odd (the last pair's second value unused), short enough that
    // the up-front uniforms often run out (pairs drawn one at a time after), one and several chunks of 1024.
    public static TheoryData<int> Lengths => [0, 1, 2, 3, 4, 5, 7, 8, 13, 100, 803, 804, 805, 1001, 4096, 65537];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void AFill_IsMathNetsFill_BitForBit_AndLeavesTheStreamWhereMathNetLeavesIt(int length)
    {
        foreach (int seed in new[] { 0, 1, 7, -3, int.MaxValue })
        {
            var reference = new MersenneTwister(seed, threadSafe: false);
            var draws = new NormalDraws(seed);
            // Three fills in a row on each stream, of this length and two others: the second and third
            // start where the fill before left the generator.
            foreach (var (n, mean, std) in new[] { (length, 0.0, 1.0), (length + 3, -2.5, 0.5), (2, 0.0, 0.01) })
            {
                var expected = new double[n];
                Normal.Samples(reference, expected, mean, std);
                var actual = new double[n];
                draws.Fill(actual, mean, std);
                AssertBits(expected, actual, $"seed {seed}, length {n}");
            }
        }
    }

    [Fact]
    public void ShortFills_WhoseUpFrontUniformsRunOut_MatchMathNet_OverManySeeds()
    {
        // With one to five values, a fill's up-front pairs are all rejected often enough (each with
        // probability 1 - π/4) that hundreds of seeds take MathNet's second, pair-at-a-time loop.
        for (int seed = 0; seed < 400; seed++)
            foreach (int n in new[] { 1, 2, 3, 5 })
            {
                var expected = new double[n];
                Normal.Samples(new MersenneTwister(seed, threadSafe: false), expected, 0.0, 1.0);
                var actual = new double[n];
                new NormalDraws(seed).Fill(actual, 0.0, 1.0);
                AssertBits(expected, actual, $"seed {seed}, length {n}");
            }
    }

    [Theory]
    [InlineData(1000, 0, 1000)]
    [InlineData(1000, 0, 1)]
    [InlineData(1000, 999, 1)]
    [InlineData(1000, 333, 334)]
    [InlineData(1001, 500, 0)]
    [InlineData(7841, 3920, 3921)]
    public void AWindow_KeepsExactlyItsPartOfTheFill_AndTheNextFillIsUnchanged(int length, int start, int count)
    {
        var whole = new NormalDraws(11);
        var all = new double[length];
        whole.Fill(all, 0.0, 1.0);
        var windowed = new NormalDraws(11);
        var window = new double[count];
        windowed.Fill(length, 0.0, 1.0, window, start);
        AssertBits(all[start..(start + count)], window, "window");
        var after = new double[37];
        var afterWindowed = new double[37];
        whole.Fill(after, 0.0, 1.0);
        windowed.Fill(afterWindowed, 0.0, 1.0);
        AssertBits(after, afterWindowed, "the fill after the windowed one");
    }

    [Fact]
    public void AWindowOutsideTheFill_IsRefused()
    {
        var draws = new NormalDraws(0);
        Assert.Throws<ArgumentOutOfRangeException>(() => draws.Fill(10, 0.0, 1.0, new double[4], 7));
        Assert.Throws<ArgumentOutOfRangeException>(() => draws.Fill(10, 0.0, 1.0, new double[4], -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => draws.Fill(10, 0.0, -1.0, new double[4], 0));
    }

    [Fact]
    public void SyntheticData_IsMathNetsXThenY()
    {
        var reference = new MersenneTwister(5, threadSafe: false);
        var x = new double[64 * 1000];
        var y = new double[64 * 10];
        Normal.Samples(reference, x, 0.0, 1.0);
        Normal.Samples(reference, y, 0.0, 1.0);
        var data = Synthetic.Data(64, 1000, 10, seed: 5);
        AssertBits(x, data.X, "x");
        AssertBits(y, data.Y, "y");
    }

    [Theory]
    [InlineData(0, 100)]
    [InlineData(0, 1)]
    [InlineData(37, 26)]
    [InlineData(99, 1)]
    public void SyntheticRows_AreThoseRowsOfTheWholeData(int first, int count)
    {
        var whole = Synthetic.Data(100, 31, 3, seed: 2);
        var rows = Synthetic.Rows(100, 31, 3, seed: 2, first, count);
        Assert.Equal(count, rows.Count);
        AssertBits(whole.X[(first * 31)..((first + count) * 31)], rows.X, "x");
        AssertBits(whole.Y[(first * 3)..((first + count) * 3)], rows.Y, "y");
    }

    [Fact]
    public void SyntheticNormals_AreMathNetsFillsOf65536Values()
    {
        // 65536 x 2 + 1000: MathNet was called once per chunk, each drawing its own up-front uniforms.
        var reference = new MersenneTwister(9, threadSafe: false);
        var expected = new double[2 * 65536 + 1000];
        for (int offset = 0; offset < expected.Length; offset += 65536)
        {
            var chunk = new double[Math.Min(65536, expected.Length - offset)];
            Normal.Samples(reference, chunk, 0.0, 0.05);
            chunk.CopyTo(expected, offset);
        }
        var actual = new double[expected.Length];
        Synthetic.Normals(actual, 9, 0.05);
        AssertBits(expected, actual, "normals");
    }

    [Theory]
    [InlineData(1000, 0, 1000)]
    [InlineData(1000, 999, 1)]
    [InlineData(7841, 3920, 3921)]
    [InlineData(65537, 100, 65000)]
    public void AFloat32Window_IsTheFloat64WindowRounded_AndTheNextFillIsUnchanged(int length, int start, int count)
    {
        var wide = new NormalDraws(3);
        var expected = new double[count];
        wide.Fill(length, -0.5, 2.0, expected, start);
        var single = new NormalDraws(3);
        var actual = new float[count];
        single.Fill<float>(length, -0.5, 2.0, actual, start);
        AssertBits(Precisions.Narrow(expected), actual, "float32 window");
        var after = new double[37];
        var afterSingle = new double[37];
        wide.Fill(after, 0.0, 1.0);
        single.Fill(afterSingle, 0.0, 1.0);
        AssertBits(after, afterSingle, "the fill after the float32 one");
    }

    [Theory]
    [InlineData(0, 100)]
    [InlineData(37, 26)]
    [InlineData(99, 1)]
    public void SyntheticRowsAsFloat32_AreTheFloat64RowsNarrowed_AndHandedOutUncopied(int first, int count)
    {
        var wide = new Float32Rows(Synthetic.Rows(100, 31, 3, seed: 2, first, count));
        var drawn = Synthetic.RowsAsFloat32(100, 31, 3, seed: 2, first, count);
        Assert.Equal((count, 31, 3), (drawn.Count, drawn.InputSize, drawn.OutputSize));
        var (x, y) = drawn.ToArrays<float>();
        var (wideX, wideY) = wide.ToArrays<float>();
        AssertBits(wideX, x, "x");
        AssertBits(wideY, y, "y");
        // A float32 worker trains on the drawn arrays themselves, as a float64 one on a Dataset's.
        Assert.Same(x, drawn.ToArrays<float>().X);
    }

    [Fact]
    public void SyntheticNormalsAsFloat32_AreTheFloat64ChunksRounded()
    {
        var expected = new double[2 * 65536 + 1000];
        Synthetic.Normals(expected, 9, 0.05);
        var actual = new float[expected.Length];
        Synthetic.Normals<float>(actual, 9, 0.05);
        AssertBits(Precisions.Narrow(expected), actual, "normals");
    }

    /// <summary>Equal bit for bit (float32 or float64), naming the first value that is not.</summary>
    private static void AssertBits<T>(T[] expected, T[] actual, string what) where T : unmanaged
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!MemoryMarshal.AsBytes(expected.AsSpan(i, 1)).SequenceEqual(MemoryMarshal.AsBytes(actual.AsSpan(i, 1))))
                Assert.Fail($"{what}: value {i} is {actual[i]}, expected {expected[i]}");
    }
}
