namespace Trainer.Abstractions;

/// <summary>
/// A grain of a running job no longer holds the state the step needs: it was re-activated empty
/// after its silo died (a parameter server, a shard, a split worker's slice, an offered tensor, the
/// uploaded samples), or it moved since the run was planned. Restoring the job's checkpoint puts
/// that state back, so the job restores and replays (docs/operations.md, "Failures").
/// </summary>
[GenerateSerializer, Alias("trainer.state-lost")]
public sealed class StateLostException(string message) : Exception(message);
