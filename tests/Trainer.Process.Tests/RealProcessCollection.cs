namespace Trainer.Process.Tests;

/// <summary>
/// Real-process tests run one at a time: each starts several silos, and on a 2-core machine two
/// clusters training at once would slow each other past their deadlines.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealProcessCollection
{
    public const string Name = "real processes";
}
