using System.Text.Json;
using Trainer.Abstractions;
using Trainer.Client;

namespace Trainer.Cluster.Tests;

/// <summary>Runs the `trainer` command line in this process and captures what it prints.</summary>
internal static class Cli
{
    public static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await new Commands(output, error).RunAsync(args);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>What `trainer train OPTIONS` would submit, parsed and checked as the command does, without a cluster.</summary>
    public static JobSubmission Submission(params string[] options)
    {
        var parsed = new Commands(TextWriter.Null, TextWriter.Null).Build().Parse(["train", .. options]);
        Assert.Empty(parsed.Errors);
        return CliOptions.JobArguments(parsed).ToSubmission();
    }

    /// <summary>The `--json` events named <paramref name="name"/> (step, eval, completed, ...) that a command printed, in order.</summary>
    public static JsonElement[] Events(string output, string name) =>
        [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("event").GetString() == name)];

    /// <summary>Every line of a --json command's output, each parsed as JSON (a line that is not fails the test: --json prints nothing else).</summary>
    public static JsonElement[] JsonLines(string output) =>
        [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)];

    /// <summary>tests/fixtures/fashion-mnist-small: the first 512 train and 128 test images of Fashion-MNIST, gzipped IDX.</summary>
    public static string SmallFashionMnist => Path.Combine(AppContext.BaseDirectory, "fixtures", "fashion-mnist-small");

    public static string TempFolder()
    {
        var path = Path.Combine(Path.GetTempPath(), "trainer-tests", Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(path);
        return path;
    }
}
