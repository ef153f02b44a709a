using Trainer.Client;

// `trainer`: see README.md. Usage errors exit with 2, like every other bad input.
var root = new Commands(Console.Out, Console.Error).Build();
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0 && parsed.Action is not System.CommandLine.Help.HelpAction)
{
    foreach (var parseError in parsed.Errors) Console.Error.WriteLine($"trainer: error: {parseError.Message}");
    Console.Error.WriteLine("Run 'trainer --help' or 'trainer train --help' for the options.");
    return 2;
}
return await parsed.InvokeAsync();
