namespace Trainer.Core;

/// <summary>
/// A job or model setting that is not allowed. The message always names the field, the value
/// given and what is allowed, so a user can fix the command line without reading code.
/// </summary>
public sealed class SpecException : ArgumentException
{
    public SpecException(string field, object? value, string allowed)
        : base($"{field}: '{Format(value)}' is not allowed; {allowed}.")
    {
        Field = field;
        Value = Format(value);
        Allowed = allowed;
    }

    public string Field { get; }
    public string Value { get; }
    public string Allowed { get; }

    private static string Format(object? value) => value switch
    {
        null => "(none)",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "(none)",
    };
}
