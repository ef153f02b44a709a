namespace Trainer.Cluster.Tests;

/// <summary>
/// Mistakes on the command line itself (a misspelt command or option, a value that is not a number)
/// get one line in Trainer's words, with the nearest name, and exit code 2; no .NET wording.
/// </summary>
public sealed class CliUsageTests
{
    [Theory]
    [InlineData("command 'trian'", "'train'", "trian")]
    [InlineData("command 'sbumit'", "'submit'", "sbumit")]
    [InlineData("command 'evalute'", "'evaluate'", "evalute")]
    [InlineData("command 'predcit'", "'predict'", "predcit")]
    [InlineData("option '--weigths'", "'--weights'", "evaluate", "--weigths", "npy:w")]
    [InlineData("option '--spilt'", "'--split'", "predict", "--spilt", "test")]
    [InlineData("option '--stpes'", "'--steps'", "train", "--stpes", "10")]
    [InlineData("option '--optimiser'", "'--optimizer'", "train", "--optimiser", "adam")]
    [InlineData("option '--gatway'", "'--gateway'", "watch", "job-1", "--gatway", "127.0.0.1:30000")]
    public async Task AMisspeltName_GetsOneLineSuggestingTheNearest_AndExit2(string unknown, string suggestion, params string[] args)
    {
        var (code, output, err) = await Cli.RunAsync(args);

        Assert.Equal(2, code);
        Assert.Equal($"trainer: error: unknown {unknown}; did you mean {suggestion}?", err.TrimEnd());
        Assert.Equal("", output);
    }

    [Fact]
    public async Task ANameFarFromAnyCommand_PointsToHelp()
    {
        var (code, _, err) = await Cli.RunAsync("frobnicate");

        Assert.Equal(2, code);
        Assert.Equal("trainer: error: unknown command 'frobnicate'; see 'trainer --help'", err.TrimEnd());
    }

    [Fact]
    public async Task NoCommand_ListsTheCommands()
    {
        var (code, _, err) = await Cli.RunAsync();

        Assert.Equal(2, code);
        Assert.Equal("trainer: error: a command is needed: train, submit, watch, status, list, cancel, result, plot, evaluate, predict; see 'trainer --help'", err.TrimEnd());
    }

    [Fact]
    public async Task AMissingJobId_IsNamedInTheSpecShape()
    {
        var (code, _, err) = await Cli.RunAsync("watch");

        Assert.Equal(2, code);
        Assert.Equal("trainer: error: job: '(none)' is not allowed; allowed: a job id, as printed by submit or list, e.g. trainer watch job-0123456789ab.", err.TrimEnd());
    }

    [Theory]
    [InlineData("steps", "ten", "a whole number (e.g. --steps 3000)", "--steps", "ten")]
    [InlineData("workers", "2.5", "a whole number (e.g. --workers 2)", "--workers", "2.5")]
    [InlineData("batch", "many", "a whole number", "--batch", "many")]
    [InlineData("lr", "abc", "a number such as 0.001 or 1e-3 (e.g. --lr 1E-05)", "--lr", "abc")]
    public async Task AValueThatDoesNotParse_IsNamedInTheSpecShape_WithoutDotNetTypes(string field, string value, string allowed, params string[] options)
    {
        var (code, _, err) = await Cli.RunAsync(["train", .. options]);

        Assert.Equal(2, code);
        Assert.Equal($"trainer: error: {field}: '{value}' is not allowed; allowed: {allowed}.", err.TrimEnd());
        Assert.DoesNotContain("System.", err);
    }

    [Theory]
    [InlineData("steps", "'10, then 5' is not allowed; the option is given 2 times; give it once.", "train", "--steps", "10", "--steps", "5")]
    [InlineData("model", "'1000-100-10, then 784-10' is not allowed; the option is given 2 times; give it once.", "train", "--model", "1000-100-10", "--model", "784-10")]
    [InlineData("split", "'test, then train, then test' is not allowed; the option is given 3 times; give it once.", "evaluate", "--split", "test", "--split", "train", "--split", "test")]
    public async Task AnOptionGivenTwice_IsRefusedAsGivenTwice_NotForItsValue(string field, string message, params string[] args)
    {
        var (code, output, err) = await Cli.RunAsync(args);

        Assert.Equal(2, code);
        Assert.Equal($"trainer: error: {field}: {message}", err.TrimEnd());
        Assert.Equal("", output);
    }
}
