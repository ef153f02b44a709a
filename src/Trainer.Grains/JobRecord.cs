using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// What a job grain writes to grain storage: its status, every step's loss and, once it is over,
/// the final parameters. Written when the job ends, so history outlives the job's activation.
/// </summary>
[GenerateSerializer, Alias("trainer.job-record")]
public sealed class JobRecord
{
    [Id(0)] public JobStatus? Status { get; set; }
    [Id(1)] public byte[] Losses { get; set; } = [];
    [Id(2)] public TensorPayload? FinalParameters { get; set; }
}
