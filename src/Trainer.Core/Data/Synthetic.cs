namespace Trainer.Core.Data;

/// <summary>
/// Seeded standard-normal draws, as in the seed job: MathNet's Mersenne Twister and normal sampler
/// (<see cref="NormalDraws"/>). Every stream is a fresh generator made from the seed, so runs are
/// reproducible and no random state is shared between callers.
/// </summary>
public static class Synthetic
{
    /// <summary>Offset of the weight-init stream from the data stream, so data and weights never share draws.</summary>
    public const int InitStreamOffset = 1_000_003;

    // Values per fill of Normals. NOTE: part of what the weights are: MathNet's sampler draws a fill's
    // uniforms up front and leaves the unused ones, so other chunks would draw other weights.
    private const int NormalsChunk = 1 << 16;

    /// <summary>The seed's data: x and y standard normal, x drawn first (row by row, one fill), then y (one fill).</summary>
    public static Dataset Data(int samples, int inputSize, int outputSize, int seed) =>
        Rows(samples, inputSize, outputSize, seed, 0, samples);

    /// <summary>
    /// Rows [<paramref name="first"/>, <paramref name="first"/> + <paramref name="count"/>) of
    /// <see cref="Data"/>, the same bits: the other rows are drawn (the stream runs through them) but
    /// not kept, so a worker holds and transforms only its own.
    /// </summary>
    public static Dataset Rows(int samples, int inputSize, int outputSize, int seed, int first, int count)
    {
        var (x, y) = Draw<double>(samples, inputSize, outputSize, seed, first, count);
        return new Dataset(x, y, count, inputSize, outputSize);
    }

    /// <summary>
    /// <see cref="Rows"/> in float32, each value rounded as <see cref="Float32Rows(Dataset)"/> rounds them, drawn
    /// straight into float32 arrays: a float32 worker of job 3 holds 13 MB of inputs, never 26 MB of float64 first.
    /// </summary>
    public static Float32Rows RowsAsFloat32(int samples, int inputSize, int outputSize, int seed, int first, int count)
    {
        var (x, y) = Draw<float>(samples, inputSize, outputSize, seed, first, count);
        return Float32Rows.Of(x, y, count, inputSize, outputSize);
    }

    private static (T[] X, T[] Y) Draw<T>(int samples, int inputSize, int outputSize, int seed, int first, int count) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(first);
        ArgumentOutOfRangeException.ThrowIfGreaterThan((long)first + count, samples);
        var draws = new NormalDraws(seed);
        var x = new T[(long)count * inputSize];
        var y = new T[(long)count * outputSize];
        draws.Fill<T>(checked(samples * inputSize), 0.0, 1.0, x, checked(first * inputSize));
        draws.Fill<T>(checked(samples * outputSize), 0.0, 1.0, y, checked(first * outputSize));
        return (x, y);
    }

    /// <summary>Fills <paramref name="values"/> with N(0, std^2) draws from a stream seeded by <paramref name="seed"/>.</summary>
    public static void Normals(Span<double> values, int seed, double std) => Normals<double>(values, seed, std);

    /// <summary><see cref="Normals(Span{double}, int, double)"/> in precision <typeparamref name="T"/> (float: each value rounded as a cast rounds).</summary>
    public static void Normals<T>(Span<T> values, int seed, double std) where T : unmanaged
    {
        var draws = new NormalDraws(seed);
        // Filled in chunks, so a 50M-parameter model needs no second full-size buffer.
        for (int offset = 0; offset < values.Length; offset += NormalsChunk)
            draws.Fill<T>(values.Slice(offset, Math.Min(NormalsChunk, values.Length - offset)), 0.0, std);
    }
}
