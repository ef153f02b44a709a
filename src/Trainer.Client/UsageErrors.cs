using System.CommandLine;
using System.CommandLine.Parsing;
using Trainer.Core;

namespace Trainer.Client;

/// <summary>
/// Turns System.CommandLine's parse errors into one line in Trainer's own words: an unknown command
/// or option with the nearest name ("did you mean"), or a value that does not parse in the
/// SpecException shape (field, value, what is allowed). No .NET type names reach the user.
/// </summary>
internal static class UsageErrors
{
    /// <summary>What is wrong with the command line, or null when nothing is.</summary>
    public static string? Find(ParseResult parsed) =>
        OptionTakenAsValue(parsed) is { } token ? Unknown(parsed.CommandResult.Command, token)
        : parsed.Errors.Count > 0 ? Describe(parsed)
        : null;

    // NOTE: an argument that takes many values (`trainer plot SOURCE...`) swallows a misspelt option
    // ("--lgo-y") as one more value, so the parser reports nothing; a value that looks like an option
    // is taken for one here. A file of such a name can still be passed as ./--name.
    private static string? OptionTakenAsValue(ParseResult parsed) =>
        parsed.CommandResult.Children.OfType<ArgumentResult>().SelectMany(a => a.Tokens)
            .Select(t => t.Value).FirstOrDefault(v => v.Length > 1 && v.StartsWith('-'));

    public static string Describe(ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        if (parsed.UnmatchedTokens.Count > 0) return Unknown(command, parsed.UnmatchedTokens[0]);
        foreach (var parseError in parsed.Errors)
            if (OptionOf(parseError.SymbolResult) is { } option) return BadValue(option).Message;
        if (command.Subcommands.Count > 0 && command.Action is null)
            return $"a command is needed: {string.Join(", ", command.Subcommands.Select(c => c.Name))}; see 'trainer --help'";
        if (command.Arguments.FirstOrDefault(a => parsed.GetResult(a) is null or { Tokens.Count: 0 }) is { } missing)
            return new SpecException(missing.Name, null, $"allowed: {missing.Description}, e.g. trainer {command.Name} job-0123456789ab").Message;
        return parsed.Errors[0].Message;
    }

    private static string Unknown(Command command, string token)
    {
        bool isOption = token.StartsWith('-');
        if (!isOption && command.Subcommands.Count == 0)
            return $"unexpected argument '{token}' to '{command.Name}'; see 'trainer {command.Name} --help'";
        var names = isOption
            ? command.Options.Concat(AncestorsOf(command).SelectMany(c => c.Options.Where(o => o.Recursive)))
                .SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--"))
            : command.Subcommands.Select(c => c.Name);
        var kind = isOption ? "option" : "command";
        var nearest = Nearest(token, names);
        return nearest is null
            ? $"unknown {kind} '{token}'; see 'trainer {(command.Parents.Any() ? command.Name + " " : "")}--help'"
            : $"unknown {kind} '{token}'; did you mean '{nearest}'?";
    }

    private static IEnumerable<Command> AncestorsOf(Command command) =>
        command.Parents.OfType<Command>().SelectMany(p => AncestorsOf(p).Prepend(p));

    private static OptionResult? OptionOf(SymbolResult? result) => result switch
    {
        OptionResult option => option,
        ArgumentResult { Parent: OptionResult option } => option,
        _ => null,
    };

    private static SpecException BadValue(OptionResult result)
    {
        var option = result.Option;
        // The parser reports an option of one value given twice as a value error; without this the
        // message would refuse the last value ("'5' is not allowed; allowed: a whole number").
        if (option.Arity.MaximumNumberOfValues == 1 && result.IdentifierTokenCount > 1)
            return new SpecException(option.Name.TrimStart('-'), string.Join(", then ", result.Tokens.Select(t => t.Value)),
                $"the option is given {result.IdentifierTokenCount} times; give it once");
        var type = Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType;
        var example = option.HasDefaultValue ? $" (e.g. {option.Name} {Invariant(option.GetDefaultValue())})" : "";
        string allowed = type == typeof(int) ? $"allowed: a whole number{example}"
            : type == typeof(double) ? $"allowed: a number such as 0.001 or 1e-3{example}"
            : $"allowed: see 'trainer --help'";
        var value = result.Tokens.Count > 0 ? result.Tokens[^1].Value : null;
        return new SpecException(option.Name.TrimStart('-'), value, allowed);
    }

    private static string? Invariant(object? value) => value is IFormattable f ? f.ToString(null, System.Globalization.CultureInfo.InvariantCulture) : value?.ToString();

    /// <summary>The candidate nearest to the token, if it is near enough to be a typo (at most a third of its letters wrong).</summary>
    private static string? Nearest(string token, IEnumerable<string> candidates) => candidates
        .Select(c => (Name: c, Distance: EditDistance(token, c)))
        .Where(c => c.Distance <= Math.Max(1, c.Name.Length / 3))
        .OrderBy(c => c.Distance).Select(c => c.Name).FirstOrDefault();

    // NOTE: written here because System.CommandLine 2.0.0 keeps its own distance internal; its
    // public ParseErrorAction.ShowTypoCorrections prints a multi-line .NET wording of its own.
    // Damerau (optimal string alignment): a swap of two neighbours ("trian", "stpes") costs 1.
    internal static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
