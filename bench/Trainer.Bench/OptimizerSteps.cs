using System.Numerics;
using Trainer.Core.Optim;

namespace Trainer.Bench;

/// <summary>
/// One optimizer step alone, on one thread, over a model's flat parameters (workload F's 235,146 by
/// default): SGD, momentum and Adam in float64 and float32, beside a plain copy of as many bytes as Adam
/// reads and writes (w, g, m, v in; w, m, v out), so a slow optimizer can be told apart from slow memory.
/// Rows interleaved per repetition; medians of microseconds per step.
/// </summary>
/// <remarks>Arguments: repetitions, steps per repetition, parameters.</remarks>
public static class OptimizerSteps
{
    public static void Run(string[] args)
    {
        int repetitions = args.Length > 1 ? int.Parse(args[1]) : 7;
        int steps = args.Length > 2 ? int.Parse(args[2]) : 300;
        int n = args.Length > 3 ? int.Parse(args[3]) : 235_146;
        InterleavedRows.Row[] rows =
        [
            new("SGD float64", () => Stepper<double>(OptimizerKind.Sgd, n)),
            new("momentum float64", () => Stepper<double>(OptimizerKind.Momentum, n)),
            new("Adam float64", () => Stepper<double>(OptimizerKind.Adam, n)),
            new("copy of Adam's bytes, float64", () => Copy<double>(n)),
            new("SGD float32", () => Stepper<float>(OptimizerKind.Sgd, n)),
            new("Adam float32", () => Stepper<float>(OptimizerKind.Adam, n)),
            new("copy of Adam's bytes, float32", () => Copy<float>(n)),
        ];
        var times = InterleavedRows.Time(rows, repetitions, warmup: 20, steps);
        Console.WriteLine($"{n} parameters, Vector<double>.Count {Vector<double>.Count}, Vector512 {(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "accelerated" : "not accelerated")}, {steps} steps x {repetitions}, one thread");
        InterleavedRows.PrintMedians(rows, times, "us", 1e6, "F1");
    }

    private static Action<int> Stepper<T>(OptimizerKind kind, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var spec = new OptimizerSpec { Kind = kind };
        var optimizer = Optimizers.Create<T>(spec, 1e-3, 1_000_000);
        var random = new Random(0);
        var w = new T[n];
        var g = new T[n];
        for (int i = 0; i < n; i++) (w[i], g[i]) = (T.CreateTruncating(random.NextDouble() - 0.5), T.CreateTruncating((random.NextDouble() - 0.5) * 1e-2));
        var state = new T[spec.StateSlots * n];
        return step => optimizer.Step(step, w, g, state);
    }

    private static Action<int> Copy<T>(int n) where T : unmanaged
    {
        var from = new T[4 * n];
        var to = new T[3 * n];
        return _ => from.AsSpan(0, 3 * n).CopyTo(to);
    }
}
