using System.Diagnostics;
using Trainer.Core.Data;
using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Bench;

/// <summary>
/// The seed job's step in the numeric core alone (<see cref="LocalTrainer"/>: no Orleans, no grains,
/// the workers' micro-shards one after another on this thread), beside its bare forward + backward
/// on the whole batch: how much of a trainer step is the core's arithmetic, so a slow job can be
/// told apart from a slow core. Rows interleaved per repetition; medians of milliseconds per step.
/// </summary>
/// <remarks>
/// Not BenchmarkDotNet, for GemmRatio's reason: rows minutes apart on a shared machine measure two loads.
/// Run as the trainer runs: DOTNET_TieredCompilation=0 (and DOTNET_EnableAVX512=0 OPENBLAS_CORETYPE=Haswell
/// for an AVX2 CPU). Arguments: repetitions, steps per repetition, GEMM threads.
/// </remarks>
public static class LocalSteps
{
    public static void Run(string[] args)
    {
        int repetitions = args.Length > 1 ? int.Parse(args[1]) : 5;
        int steps = args.Length > 2 ? int.Parse(args[2]) : 1000;
        int threads = args.Length > 3 ? int.Parse(args[3]) : 1;
        Blas.SetThreads(threads);
        var data = Synthetic.Data(64, 1000, 10, seed: 0);
        var rows = new (string Name, Func<Func<double>> Make)[]
        {
            ("LocalTrainer, data parallel, W=1 (2 micro-shards of 32)", () => Trainer(new TrainingSpec { Workers = 1, Parallelism = Parallelism.Data }, data)),
            ("LocalTrainer, data parallel, W=2 in turn", () => Trainer(new TrainingSpec { Workers = 2, Parallelism = Parallelism.Data }, data)),
            ("LocalTrainer, data parallel, W=1, 1 micro-shard", () => Trainer(new TrainingSpec { Workers = 1, Parallelism = Parallelism.Data, MicroShards = 1 }, data)),
            ("LocalTrainer, split, W=2 in turn", () => Trainer(new TrainingSpec { Workers = 2, Parallelism = Parallelism.SplitFirstLayer }, data)),
            ("Mlp.LossAndGradient, 64 samples (no update)", () => Bare(data, 64)),
            ("Mlp.LossAndGradient, 32 samples (no update)", () => Bare(data, 32)),
        };
        var times = rows.Select(_ => new List<double>()).ToArray();
        for (int rep = 0; rep < repetitions; rep++)
            for (int r = 0; r < rows.Length; r++)
            {
                var step = rows[r].Make();
                for (int i = 0; i < 50; i++) step();   // warm-up: JIT, caches
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < steps; i++) step();
                times[r].Add(clock.Elapsed.TotalMilliseconds / steps);
            }
        Console.WriteLine($"{Environment.ProcessorCount} cores, GEMM {Blas.Default.GetType().Name}, {threads} GEMM thread(s), {steps} steps x {repetitions}");
        Console.WriteLine("| row | median ms/step | min-max |");
        Console.WriteLine("|---|---:|---|");
        for (int r = 0; r < rows.Length; r++)
        {
            var sorted = times[r].Order().ToArray();
            Console.WriteLine($"| {rows[r].Name} | {sorted[sorted.Length / 2]:F3} | {sorted[0]:F3}-{sorted[^1]:F3} |");
        }
    }

    private static Func<double> Trainer(TrainingSpec spec, Dataset data)
    {
        var trainer = new LocalTrainer(spec with { Steps = TrainingSpec.MaxSteps }, data, Initializer.Create(ParameterLayout.For(spec.Model), spec.Init, spec.Seed));
        return trainer.Step;
    }

    private static Func<double> Bare(Dataset data, int samples)
    {
        var model = new Mlp(ModelSpec.Seed, Blas.Default);
        var parameters = Initializer.Create(model.Layout, InitKind.Normal, seed: 0);
        var gradient = new double[model.Layout.Count];
        return () => model.LossAndGradient(parameters, data.X, data.Y, samples, gradient);
    }
}
