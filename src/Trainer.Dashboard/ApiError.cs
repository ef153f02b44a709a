using System.Text.Json.Serialization;
using Trainer.Core;

namespace Trainer.Dashboard;

/// <summary>
/// The body of every error answer of the API: <c>{"error": "...", "field": "from", "value": "abc", "allowed": "..."}</c>.
/// <see cref="Error"/> is one line a person can act on; the other fields name what was wrong, when one input was.
/// </summary>
public sealed record ApiError(
    string Error,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Field = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Value = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Allowed = null)
{
    public static ApiError Of(SpecException e) => new(e.Message, e.Field, e.Value, e.Allowed.StartsWith("allowed: ") ? e.Allowed["allowed: ".Length..] : e.Allowed);
}
