using BenchmarkDotNet.Running;
using Trainer.Bench;

// dotnet run -c Release --project bench/Trainer.Bench -- --filter '*'
// Other filters: '*Gemm*', '*SeedStep*'. Results land in BenchmarkDotNet.Artifacts/ (git-ignored).
// dotnet run -c Release --project bench/Trainer.Bench -- ratio [repetitions] [filter]: managed
// against OpenBLAS per shape in one run (GemmRatio), a markdown table on stdout.
if (args.Length > 0 && args[0] == "ratio") GemmRatio.Run(args);
else if (args.Length > 0 && args[0] == "local") LocalSteps.Run(args);
else BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
