using Trainer.Core.Data;

namespace Trainer.Cluster.Tests;

/// <summary>
/// An independent forward pass, in plain loops, that evaluate and predict are checked against: a
/// saved relu MLP with biases (w1.npy, b1.npy, ... read with numpy's codec, <see cref="Npy"/>) run one
/// sample at a time, its softmax, cross-entropy and argmax written out here; and the IDX fixture read
/// by hand (a 16-byte images header, an 8-byte labels header, pixels byte / 255).
/// </summary>
internal sealed class ReferenceMlp(double[][] weights, int[][] shapes, double[][] biases)
{
    public static ReferenceMlp Load(string folder, int layers)
    {
        var w = new double[layers][];
        var shapes = new int[layers][];
        var b = new double[layers][];
        for (int l = 0; l < layers; l++)
        {
            var weight = Read(folder, $"w{l + 1}.npy");
            (w[l], shapes[l], b[l]) = (weight.Data, weight.Shape, Read(folder, $"b{l + 1}.npy").Data);
        }
        return new ReferenceMlp(w, shapes, b);
    }

    /// <summary>One sample's outputs: z = W_L relu(... relu(W_1 x + b_1) ...) + b_L.</summary>
    public double[] Outputs(double[] x)
    {
        var a = x;
        for (int l = 0; l < weights.Length; l++)
        {
            int rows = shapes[l][0], cols = shapes[l][1];
            var z = new double[rows];
            for (int j = 0; j < rows; j++)
            {
                double sum = biases[l][j];
                for (int i = 0; i < cols; i++) sum += weights[l][j * cols + i] * a[i];
                z[j] = l < weights.Length - 1 ? Math.Max(sum, 0) : sum;
            }
            a = z;
        }
        return a;
    }

    public static int Argmax(double[] z)
    {
        int best = 0;
        for (int k = 1; k < z.Length; k++) if (z[k] > z[best]) best = k;
        return best;
    }

    public static double[] Softmax(double[] z)
    {
        double max = z.Max();
        var e = z.Select(v => Math.Exp(v - max)).ToArray();
        double sum = e.Sum();
        return e.Select(v => v / sum).ToArray();
    }

    /// <summary>-log softmax(z)[label] = log Σ exp(z - max) - (z[label] - max).</summary>
    public static double CrossEntropy(double[] z, int label)
    {
        double max = z.Max();
        return Math.Log(z.Sum(v => Math.Exp(v - max))) - (z[label] - max);
    }

    /// <summary>The smallest gap between a row's two largest outputs: above rounding, no argmax can differ between implementations.</summary>
    public static double SmallestGap(IEnumerable<double[]> outputs) =>
        outputs.Min(z => { var top = z.OrderDescending().Take(2).ToArray(); return top[0] - top[1]; });

    /// <summary>The fixture's images of a split ("train", "t10k") as rows of 784 pixels in [0, 1], and their labels.</summary>
    public static (double[][] Images, int[] Labels) Fixture(string split)
    {
        var pixels = CliDataTests.Gunzip(Path.Combine(Cli.SmallFashionMnist, $"{split}-images-idx3-ubyte.gz"))[16..];
        var labels = CliDataTests.Gunzip(Path.Combine(Cli.SmallFashionMnist, $"{split}-labels-idx1-ubyte.gz"))[8..];
        var images = Enumerable.Range(0, labels.Length).Select(r => pixels[(r * 784)..((r + 1) * 784)].Select(p => p / 255.0).ToArray()).ToArray();
        return (images, labels.Select(l => (int)l).ToArray());
    }

    private static NpyArray Read(string folder, string file)
    {
        using var stream = File.OpenRead(Path.Combine(folder, file));
        return Npy.Read(stream, file);
    }
}
