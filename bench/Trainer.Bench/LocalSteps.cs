using System.Diagnostics;
using System.Numerics.Tensors;
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
/// Run with the code the trainer's steps run: DOTNET_TieredCompilation=0, fully optimized without PGO (and DOTNET_EnableAVX512=0 OPENBLAS_CORETYPE=Haswell
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
        }.Select(row => new InterleavedRows.Row(row.Name, () => { var step = row.Make(); return _ => step(); })).ToArray();
        var times = InterleavedRows.Time(rows, repetitions, warmup: 50, steps);
        Console.WriteLine($"{Environment.ProcessorCount} cores, GEMM {Blas.Default.GetType().Name}, {threads} GEMM thread(s), {steps} steps x {repetitions}");
        InterleavedRows.PrintMedians(rows, times, "ms", 1e3, "F3");
    }

    /// <summary>
    /// The floor of a step team's seed step (<c>StepTeam</c> in the grains): two threads, each the forward and
    /// backward of half the batch at one shared set of parameters, then each adding up and stepping half of the
    /// model, meeting between (a spin barrier). No grains, no micro-shard tree, no window: what the step costs
    /// when nothing but the arithmetic and the two meetings is left. Arguments: repetitions, steps per repetition.
    /// </summary>
    public static void Team(string[] args)
    {
        int repetitions = args.Length > 1 ? int.Parse(args[1]) : 5;
        int steps = args.Length > 2 ? int.Parse(args[2]) : 3000;
        Blas.SetThreads(1);
        var data = Synthetic.Data(64, 1000, 10, seed: 0);
        var parameters = Initializer.Create(ParameterLayout.For(ModelSpec.Seed), InitKind.Normal, seed: 0);
        int count = parameters.Length, half = data.Count / 2;
        var halves = new[] { (X: data.X[..(half * 1000)], Y: data.Y[..(half * 10)]), (X: data.X[(half * 1000)..], Y: data.Y[(half * 10)..]) };
        var models = new[] { new Mlp(ModelSpec.Seed, Blas.Default), new Mlp(ModelSpec.Seed, Blas.Default) };
        var gradients = new[] { new double[count], new double[count] };
        var ranges = new[] { (0, count / 2), (count / 2, count - count / 2) };
        var times = new List<double>();
        for (int rep = 0; rep < repetitions; rep++)
        {
            long phase = 0;
            int arrived = 0;
            void Meet()
            {
                long seen = Volatile.Read(ref phase);
                if (Interlocked.Increment(ref arrived) == 2)
                {
                    Volatile.Write(ref arrived, 0);
                    Interlocked.Increment(ref phase);
                    return;
                }
                var spin = new SpinWait();
                while (Volatile.Read(ref phase) == seen) spin.SpinOnce(sleep1Threshold: -1);
            }
            void Steps(int t)
            {
                var (start, length) = ranges[t];
                for (int s = 0; s < steps; s++)
                {
                    models[t].LossAndGradient(parameters, halves[t].X, halves[t].Y, half, gradients[t]);
                    Meet();
                    var sum = gradients[0].AsSpan(start, length);
                    TensorPrimitives.Add(sum, gradients[1].AsSpan(start, length), sum);
                    TensorPrimitives.MultiplyAdd(sum, -1e-5, parameters.AsSpan(start, length), parameters.AsSpan(start, length));
                    Meet();
                }
            }
            var clock = Stopwatch.StartNew();
            var other = new Thread(() => Steps(1));
            other.Start();
            Steps(0);
            other.Join();
            times.Add(clock.Elapsed.TotalMilliseconds / steps);
        }
        Console.WriteLine($"{Environment.ProcessorCount} cores, GEMM {Blas.Default.GetType().Name}, {steps} steps x {repetitions}");
        Console.WriteLine($"| two threads, half the seed batch each, shared parameters (the step team's floor) | {InterleavedRows.Spread(times, 1, "F3", " ms/step")} |");
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
