using BenchmarkDotNet.Attributes;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;

namespace Trainer.Bench;

/// <summary>
/// One forward + backward of the seed model (1000-100-10, sigmoid, no bias, SSE) on the seed's
/// 64 samples, per backend: the work a worker does per step, without the SGD update or messaging.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 8)]
[MemoryDiagnoser]
public class SeedStepBenchmarks
{
    [Params(64, 32)]
    public int Samples { get; set; }

    [Params("openblas", "managed")]
    public string Backend { get; set; } = "";

    private Mlp _model = null!;
    private Dataset _data = null!;
    private double[] _parameters = [], _gradient = [];

    [GlobalSetup]
    public void Setup()
    {
        var blas = Blas.Create(Backend == "managed" ? BlasBackend.Managed : BlasBackend.OpenBlas);
        _model = new Mlp(ModelSpec.Seed, blas);
        _data = Synthetic.Data(Samples, 1000, 10, seed: 0);
        _parameters = Initializer.Create(_model.Layout, InitKind.Normal, seed: 0);
        _gradient = new double[_model.Layout.Count];
    }

    [Benchmark]
    public double LossAndGradient() => _model.LossAndGradient(_parameters, _data.X, _data.Y, Samples, _gradient);
}
