using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace Trainer.Client;

/// <summary>
/// System.CommandLine's help followed by an "Examples:" section for the command asked about, and
/// the exit codes (<see cref="ExitCodes"/>) in the root help.
/// </summary>
internal sealed class HelpExamples(HelpAction help) : SynchronousCommandLineAction
{
    private const string G = "127.0.0.1:30000";
    // Workload F's model, and the data it was trained on: what `train --save npy:w` wrote weights (and their model.json) for.
    private const string FashionModel = "--model 784-256-128-10 --activation relu --bias --loss ce";
    private const string FashionData = "--data idx:/usr/share/datasets/fashion-mnist";
    private const string Fashion = FashionData + " " + FashionModel;

    private static readonly Dictionary<string, string[]> Examples = new()
    {
        [""] = ["trainer train", $"id=$(trainer submit --gateway {G} --workers 3 --steps 5000)", $"trainer watch $id --gateway {G}", $"trainer plot $id --gateway {G}", $"trainer evaluate --weights npy:w {FashionData}"],
        ["train"] = ["trainer train                     # the seed job, on an embedded silo",
            "trainer train --model 784-256-128-10 --activation relu --bias --optimizer adam --lr 1e-3",
            $"trainer train --gateway {G} --workers 3 --steps 500 --save npy:out",
            "trainer train --steps 500 --plot loss.png        # the live bar, then the loss curve",
            "trainer train --steps 500 --json > run.log       # a log for `trainer plot`",
            "trainer train --data idx:/usr/share/datasets/fashion-mnist --model 784-128-10 --activation relu --bias --init he --loss ce --optimizer adam --lr 1e-3 --batch 10000",
            $"trainer train {Fashion} --optimizer adam --lr 1e-3 --batch 128 --epochs 30 --val-fraction 0.1 --early-stopping 3 --save npy:w"],
        ["submit"] = [$"id=$(trainer submit --gateway {G} --workers 3 --steps 5000)",
            $"trainer submit --gateway {G} --model 784-256-128-10 --activation relu --bias --optimizer adam --lr 1e-3",
            $"trainer submit --gateway {G} {Fashion} --data-on-silos --optimizer adam --lr 1e-3 --batch 128 --epochs 10   # every silo reads the files"],
        ["watch"] = [$"trainer watch $id --gateway {G}", $"trainer watch $id --gateway {G} --from-start --json",
            $"trainer watch $id --gateway {G} --progress plain   # the step lines, even on a terminal"],
        ["status"] = [$"trainer status $id --gateway {G}", $"trainer status $id --gateway {G} --json"],
        ["list"] = [$"trainer list --gateway {G}", $"TRAINER_GATEWAY={G} trainer list --json"],
        ["cancel"] = [$"trainer cancel $id --gateway {G}", $"trainer cancel $id --gateway {G} --json"],
        ["result"] = [$"trainer result $id --gateway {G}", $"trainer result $id --gateway {G} --save npy:weights"],
        ["plot"] = ["trainer plot run.log                              # loss.png from a --json log",
            $"trainer plot $id --gateway {G} --log-y --out loss.svg",
            $"trainer plot run1.log run2.log $id --gateway {G} --out compare.png"],
        ["evaluate"] = [$"trainer evaluate --weights npy:w {FashionData}        # the test set; w/model.json gives the model",
            $"trainer evaluate --weights npy:w {FashionData} --split train --json",
            $"trainer evaluate --weights npy:numpy-weights {Fashion}   # weights without a model.json",
            "trainer evaluate --weights npy:w --data npy:data --model 20-16-1 --loss mse   # regression: the loss alone"],
        ["predict"] = [$"trainer predict --weights npy:w {FashionData}",
            $"trainer predict --weights npy:w {FashionData} --out probabilities.csv",
            "trainer predict --weights npy:w --data npy:new --out classes.npy   # x.npy alone is enough"],
    };

    private const string ExitCodeHelp = """
        Exit codes:
          0    completed
          1    unexpected error
          2    bad input (nothing was started)
          3    diverged (the loss became NaN/Inf)
          4    failed
          5    cancelled
          130  interrupted (Ctrl+C or SIGTERM)
        """;

    // Help must show even when the rest of the command line does not parse (`trainer train --steps x --help`).
    public override bool ClearsParseErrors => true;

    /// <summary>Replaces the root's (recursive) help option's action, so every command's help gets its examples.</summary>
    public static void Install(RootCommand root)
    {
        var option = root.Options.OfType<HelpOption>().Single();
        option.Action = new HelpExamples((HelpAction)option.Action!);
    }

    public override int Invoke(ParseResult parseResult)
    {
        int code = help.Invoke(parseResult);
        var output = parseResult.InvocationConfiguration.Output;
        var command = parseResult.CommandResult.Command;
        if (Examples.TryGetValue(command is RootCommand ? "" : command.Name, out var lines))
        {
            output.WriteLine("Examples:");
            foreach (var line in lines) output.WriteLine($"  {line}");
            output.WriteLine();
        }
        if (command is RootCommand)
        {
            output.WriteLine(ExitCodeHelp);
        }
        return code;
    }
}
