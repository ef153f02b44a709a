using MathNet.Numerics.Random;

namespace Trainer.Core.Data;

/// <summary>
/// The normal draws of MathNet.Numerics' <c>Normal.Samples(new MersenneTwister(seed, false), double[], mean, std)</c>,
/// bit for bit, from the same Mersenne Twister, call after call on one stream; a caller may keep only a
/// window of a fill's values, and the others are then drawn but never transformed.
/// </summary>
/// <remarks>
/// The seed job's data and every job's drawn weights are defined as MathNet's draws (SEED.md: the seed
/// job's final loss 515.3775248150923 rests on them), so this keeps MathNet's generator and repeats its
/// polar transform exactly. Not MathNet's <c>Normal.Samples</c> itself, because of what it costs at the
/// sizes jobs draw (job 3's 8192 x 784 inputs on every worker, a 50M-parameter model's weights):
/// it allocates all of a fill's uniforms up front (4/π ≈ 1.27 of them per value, 65 MB beside job 3's
/// 51 MB of inputs, all paged in fresh), and a worker that keeps a quarter of the rows paid the log and
/// square root of every value. Here the uniforms come in small chunks and a value outside the window
/// costs only its two uniforms and the unit-circle test.
/// MathNet 5.0.0's <c>Normal.SamplesUnchecked(Random, double[], ...)</c>, which this follows: for n
/// values it draws 2⌈n·4/π / 2⌉ uniforms at once, turns consecutive pairs (a, b) into values with
/// Marsaglia's polar method (v = 2u - 1, r = v1² + v2², rejected unless 0 &lt; r &lt; 1, fac =
/// √(-2 ln r / r), values mean + std·v1·fac then mean + std·v2·fac), stops when n are made (the
/// uniforms it did not use stay drawn), and if they ran out draws further pairs one at a time.
/// <c>NormalDrawsTests</c> checks the bits against MathNet itself.
/// </remarks>
public sealed class NormalDraws
{
    // MathNet's Constants.InvPi, to the digit: the count of uniforms drawn up front is computed from it.
    private const double InvPi = 0.31830988618379067153776752674502872406891929148091d;
    // Uniforms are made a chunk at a time (an even count, so pairs never straddle two chunks).
    private const int Chunk = 1024;

    private readonly MersenneTwister _random;
    private readonly double[] _uniforms = new double[Chunk];

    public NormalDraws(int seed) => _random = new MersenneTwister(seed, threadSafe: false);

    /// <summary>
    /// One MathNet fill of <paramref name="values"/>.Length values, all kept: what
    /// <c>Normal.Samples(random, values, mean, std)</c> writes, and the stream left where it leaves it.
    /// </summary>
    public void Fill(Span<double> values, double mean, double std) => Fill(values.Length, mean, std, values, 0);

    /// <summary>
    /// <see cref="Fill(Span{double}, double, double)"/>'s values in precision <typeparamref name="T"/>: for float,
    /// each float64 value rounded to the nearest float32, as <c>Precisions.Narrow</c> rounds a float64 fill.
    /// </summary>
    public void Fill<T>(Span<T> values, double mean, double std) where T : unmanaged => Fill(values.Length, mean, std, values, 0);

    /// <summary>
    /// One MathNet fill of <paramref name="length"/> values, keeping only those at positions
    /// [<paramref name="windowStart"/>, <paramref name="windowStart"/> + <paramref name="window"/>.Length)
    /// in <paramref name="window"/>; the stream advances as by the whole fill.
    /// </summary>
    public void Fill(int length, double mean, double std, Span<double> window, int windowStart) =>
        Fill<double>(length, mean, std, window, windowStart);

    /// <summary>
    /// <see cref="Fill(int, double, double, Span{double}, int)"/> with the window in precision <typeparamref name="T"/>
    /// (double or float, rounded as a cast rounds): a float32 job's drawn rows and weights without a float64
    /// copy of them first.
    /// </summary>
    public void Fill<T>(int length, double mean, double std, Span<T> window, int windowStart) where T : unmanaged
    {
        if (typeof(T) != typeof(double) && typeof(T) != typeof(float))
            throw new NotSupportedException($"Precision {typeof(T).Name}: only double and float are supported.");
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfNegative(std);
        // MathNet computes length·4 in int; past this it would overflow (and MathNet fail) rather than draw.
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, int.MaxValue / 4);
        if (windowStart < 0 || (long)windowStart + window.Length > length)
            throw new ArgumentOutOfRangeException(nameof(windowStart), $"the window [{windowStart}, {(long)windowStart + window.Length}) is not within the fill's {length} values");
        if (length == 0) return;
        int upFront = (int)Math.Ceiling(length * 4 * InvPi);
        if (upFront % 2 != 0) upFront++;
        var writer = new Writer<T>(window, windowStart, mean, std);
        int index = 0, drawn = 0;
        while (drawn < upFront)
        {
            int count = Math.Min(Chunk, upFront - drawn);
            var uniforms = _uniforms.AsSpan(0, count);
            NextDoubles(uniforms);
            drawn += count;
            for (int i = 0; i < count && index < length; i += 2)
                writer.Pair(uniforms[i], uniforms[i + 1], ref index, length);
            if (index == length)
            {
                // Done early: the rest of the up-front uniforms are drawn all the same, as MathNet draws them.
                SkipUniforms(upFront - drawn);
                return;
            }
        }
        while (index < length)
            writer.Pair(_random.NextDouble(), _random.NextDouble(), ref index, length);
    }

    // A whole chunk in one call to the generator (a loop over its sealed DoSample), a part of one a uniform at a time.
    private void NextDoubles(Span<double> into)
    {
        if (into.Length == Chunk) _random.NextDoubles(_uniforms);
        else for (int i = 0; i < into.Length; i++) into[i] = _random.NextDouble();
    }

    private void SkipUniforms(int count)
    {
        for (; count >= Chunk; count -= Chunk) _random.NextDoubles(_uniforms);
        for (int i = 0; i < count; i++) _random.NextDouble();
    }

    /// <summary>Turns pairs of uniforms into values at positions index, index + 1, ..., writing those in the window.</summary>
    private readonly ref struct Writer<T>(Span<T> window, int windowStart, double mean, double std) where T : unmanaged
    {
        private readonly Span<T> _window = window;
        private readonly int _start = windowStart;
        private readonly int _end = windowStart + window.Length;

        /// <summary>One pair: nothing when rejected, else the values at index and index + 1 (the second only while below length).</summary>
        public void Pair(double a, double b, ref int index, int length)
        {
            // NOTE: the same expressions as MathNet's PolarTransform, in the same order: the bits depend on them.
            var v1 = (2.0 * a) - 1.0;
            var v2 = (2.0 * b) - 1.0;
            var r = (v1 * v1) + (v2 * v2);
            if (r >= 1.0 || r == 0.0) return;
            // The window lies within the fill (checked by Fill), so a position in it is below length.
            bool first = index >= _start && index < _end, second = index + 1 >= _start && index + 1 < _end;
            if (first || second)
            {
                var fac = Math.Sqrt(-2.0 * Math.Log(r) / r);
                if (first) _window[index - _start] = SampleRows.FromDouble<T>(mean + std * (v1 * fac));
                if (second) _window[index + 1 - _start] = SampleRows.FromDouble<T>(mean + std * (v2 * fac));
            }
            index = Math.Min(index + 2, length);
        }
    }
}
