using Trainer.Abstractions;

namespace Trainer.Grains;

/// <summary>
/// What a job grain writes to grain storage: its status, the losses up to the latest checkpoint,
/// the checkpoint itself (parameters after step k) and, once the job is over, every loss and the
/// final parameters. Only the job grain writes it.
/// </summary>
[GenerateSerializer, Alias("trainer.job-record")]
public sealed class JobRecord
{
    [Id(0)] public JobStatus? Status { get; set; }
    [Id(1)] public byte[] Losses { get; set; } = [];
    [Id(2)] public TensorPayload? FinalParameters { get; set; }
    [Id(3)] public ParameterState? Checkpoint { get; set; }
}

/// <summary>A job's uploaded samples, stored once at submission, apart from the record that is rewritten at every checkpoint.</summary>
[GenerateSerializer, Alias("trainer.job-data")]
public sealed class JobData
{
    [Id(0)] public DatasetPayload? Data { get; set; }
}
