using BenchmarkDotNet.Running;
using Trainer.Bench;

// dotnet run -c Release --project bench/Trainer.Bench -- --filter '*'
// Other filters: '*Gemm*', '*SeedStep*'. Results land in BenchmarkDotNet.Artifacts/ (git-ignored).
// dotnet run -c Release --project bench/Trainer.Bench -- ratio [repetitions] [filter]: managed
// against OpenBLAS per shape in one run (GemmRatio), a markdown table on stdout.
// ... -- local [repetitions] [steps] [threads]: the seed step in the numeric core alone (LocalSteps);
// ... -- team [repetitions] [steps]: the floor of a step team's seed step, two threads (LocalSteps.Team).
// ... -- optim [repetitions] [steps] [parameters]: one optimizer step alone on one thread (OptimizerSteps).
// ... -- leaves [repetitions] [steps]: a worker's micro-shards computed together against each alone (MicroShardSteps).
if (args.Length > 0 && args[0] == "ratio") GemmRatio.Run(args);
else if (args.Length > 0 && args[0] == "local") LocalSteps.Run(args);
else if (args.Length > 0 && args[0] == "team") LocalSteps.Team(args);
else if (args.Length > 0 && args[0] == "optim") OptimizerSteps.Run(args);
else if (args.Length > 0 && args[0] == "leaves") MicroShardSteps.Run(args);
else BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
