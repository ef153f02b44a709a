using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Trainer.Bench -- --filter '*'
// Other filters: '*Gemm*', '*SeedStep*'. Results land in BenchmarkDotNet.Artifacts/ (git-ignored).
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
