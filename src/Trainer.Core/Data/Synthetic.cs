using MathNet.Numerics.Distributions;
using MathNet.Numerics.Random;

namespace Trainer.Core.Data;

/// <summary>
/// Seeded standard-normal draws, as in the seed job. Every stream is a fresh Mersenne Twister
/// made from the seed, so runs are reproducible and no random state is shared between callers.
/// </summary>
public static class Synthetic
{
    /// <summary>Offset of the weight-init stream from the data stream, so data and weights never share draws.</summary>
    public const int InitStreamOffset = 1_000_003;

    /// <summary>The seed's data: x and y standard normal, x drawn first (row by row), then y.</summary>
    public static Dataset Data(int samples, int inputSize, int outputSize, int seed)
    {
        var random = new MersenneTwister(seed, threadSafe: false);
        var x = new double[(long)samples * inputSize];
        var y = new double[(long)samples * outputSize];
        Normal.Samples(random, x, 0.0, 1.0);
        Normal.Samples(random, y, 0.0, 1.0);
        return new Dataset(x, y, samples, inputSize, outputSize);
    }

    /// <summary>Fills <paramref name="values"/> with N(0, std^2) draws from a stream seeded by <paramref name="seed"/>.</summary>
    public static void Normals(Span<double> values, int seed, double std)
    {
        var random = new MersenneTwister(seed, threadSafe: false);
        // NOTE: filled in even-sized chunks so a 50M-parameter model needs no second full-size buffer;
        // MathNet draws normals in pairs, so even chunks give the same sequence as one big fill.
        var buffer = new double[Math.Min(values.Length, 1 << 16)];
        for (int offset = 0; offset < values.Length; offset += buffer.Length)
        {
            int n = Math.Min(buffer.Length, values.Length - offset);
            if (n < buffer.Length) buffer = new double[n];
            Normal.Samples(random, buffer, 0.0, std);
            buffer.CopyTo(values.Slice(offset, n));
        }
    }
}
