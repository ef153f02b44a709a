namespace Trainer.Abstractions;

/// <summary>
/// A submission the cluster refused before starting anything. Carries the field, the value and
/// what is allowed across the wire, so the client can print them exactly.
/// </summary>
[GenerateSerializer, Alias("trainer.job-rejected")]
public sealed class JobRejectedException : Exception
{
    public JobRejectedException(string field, string value, string message) : base(message)
    {
        Field = field;
        Value = value;
    }

    [Id(0)] public string Field { get; }
    [Id(1)] public string Value { get; }
}
