namespace Trainer.Cluster.Tests;

/// <summary>Every command's help ends with real command lines to copy; the root help lists the exit codes.</summary>
public sealed class CliHelpTests
{
    [Theory]
    [InlineData("train", "trainer train --model 784-256-128-10 --activation relu --bias --optimizer adam --lr 1e-3")]
    [InlineData("train", "trainer train --data idx:/usr/share/datasets/fashion-mnist --model 784-128-10 --activation relu --bias --init he --loss ce")]
    [InlineData("submit", "id=$(trainer submit --gateway 127.0.0.1:30000 --workers 3 --steps 5000)")]
    [InlineData("watch", "trainer watch $id --gateway 127.0.0.1:30000")]
    [InlineData("status", "trainer status $id --gateway 127.0.0.1:30000")]
    [InlineData("list", "trainer list --gateway 127.0.0.1:30000")]
    [InlineData("cancel", "trainer cancel $id --gateway 127.0.0.1:30000")]
    [InlineData("result", "trainer result $id --gateway 127.0.0.1:30000 --save npy:weights")]
    [InlineData("plot", "trainer plot $id --gateway 127.0.0.1:30000 --log-y --out loss.svg")]
    [InlineData("train", "trainer train --steps 500 --plot loss.png")]
    [InlineData("watch", "trainer watch $id --gateway 127.0.0.1:30000 --progress plain")]
    [InlineData("evaluate", "trainer evaluate --weights npy:w --data idx:/usr/share/datasets/fashion-mnist        # the test set; w/model.json gives the model")]
    [InlineData("evaluate", "trainer evaluate --weights npy:numpy-weights --data idx:/usr/share/datasets/fashion-mnist --model 784-256-128-10 --activation relu --bias --loss ce")]
    [InlineData("predict", "trainer predict --weights npy:w --data idx:/usr/share/datasets/fashion-mnist --out probabilities.csv")]
    public async Task ACommandsHelp_EndsWithExamplesOfThatCommand(string command, string example)
    {
        var (code, output, _) = await Cli.RunAsync(command, "--help");

        Assert.Equal(0, code);
        var examples = output[output.IndexOf("Examples:", StringComparison.Ordinal)..];
        Assert.Contains(example, examples);
        Assert.DoesNotContain("Exit codes:", output);
    }

    [Theory]
    [InlineData("evaluate")]
    [InlineData("predict")]
    public async Task EvaluateAndPredictHelp_SayTheyRunInThisProcess_AndOfferNoGateway(string command)
    {
        var (code, output, _) = await Cli.RunAsync(command, "--help");

        Assert.Equal(0, code);
        Assert.Contains("in this process (no cluster, no --gateway)", output);
        Assert.DoesNotContain("--gateway <", output);
        foreach (var option in new[] { "--weights", "--data", "--model", "--activation", "--bias", "--loss", "--split", "--scale", "--json" })
            Assert.Contains(option, output);
        Assert.Contains("[default: test when --data has a test set, else train]", output);
        // The model's options default to the weights' model.json, not to train's seed model.
        Assert.Contains("Layer widths from input to output [default: the weights' model.json, else 1000-100-10]", output);
        Assert.DoesNotContain("[default: 1000-100-10]", output);
    }

    [Fact]
    public async Task TheRootHelp_ListsEveryExitCode()
    {
        var (code, output, _) = await Cli.RunAsync("--help");

        Assert.Equal(0, code);
        Assert.Contains("Examples:", output);
        foreach (var line in new[] { "0    completed", "1    unexpected error", "2    bad input", "3    diverged", "4    failed", "5    cancelled", "130  interrupted" })
            Assert.Contains(line, output);
    }

    [Fact]
    public async Task HelpWithABadValue_StillShowsTheHelp()
    {
        var (code, output, err) = await Cli.RunAsync("train", "--steps", "ten", "--help");

        Assert.Equal(0, code);
        Assert.Contains("Examples:", output);
        Assert.Equal("", err);
    }
}
