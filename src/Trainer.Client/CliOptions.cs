using System.CommandLine;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Client;

/// <summary>The command-line options, defined once and shared by the commands that use them.</summary>
internal static class CliOptions
{
    // The seed's model: train's defaults, and evaluate's and predict's for weights without a model.json.
    public const string DefaultModel = "1000-100-10";
    public const string DefaultActivation = "sigmoid";
    public const string DefaultLoss = "sse";

    public static readonly Option<string> Model = new("--model") { Description = "Layer widths from input to output", DefaultValueFactory = _ => DefaultModel };
    public static readonly Option<string> Activation = new("--activation") { Description = "Hidden activation: sigmoid, tanh, relu", DefaultValueFactory = _ => DefaultActivation };
    public static readonly Option<string> Loss = new("--loss") { Description = "Loss: sse (sum of squares, the seed's), mse (their mean), or ce (softmax cross-entropy, the mean over the batch; needs class data)", DefaultValueFactory = _ => DefaultLoss };
    public static readonly Option<bool> Bias = new("--bias") { Description = "Give every layer a bias (the seed has none)" };
    public static readonly Option<double> LearningRate = new("--lr") { Description = "Learning rate (before any --lr-schedule)", DefaultValueFactory = _ => 1e-5 };
    public static readonly Option<int?> Batch = new("--batch") { Description = "Samples per step: with --data, mini-batches drawn from the data in epochs, each a shuffle seeded by --seed [default: every training row of --data, or 64 synthetic samples]" };
    public static readonly Option<int?> Epochs = new("--epochs") { Description = "Train for this many passes over --data (instead of --steps): epochs x ceil(samples / batch) steps, or floor with --drop-last" };
    public static readonly Option<bool> DropLast = new("--drop-last") { Description = "Drop each epoch's last batch when the data leaves fewer than --batch samples for it (kept by default, as in PyTorch)" };
    public static readonly Option<int> Steps = new("--steps") { Description = "Training steps (or give --epochs)", DefaultValueFactory = _ => JobArgumentsDefaults.Steps };
    public static readonly Option<int> Workers = new("--workers") { Description = "Worker grains (each a shard of the batch, or with --parallel split a slice of the first layer)", DefaultValueFactory = _ => 2 };
    public static readonly Option<int> Seed = new("--seed") { Description = "Seed of the synthetic data and the initial weights", DefaultValueFactory = _ => 0 };
    public static readonly Option<string?> Data = new("--data") { Description = "npy:DIR with x.npy (N, D_in) and y.npy (N, D_out) or (N,) integer class labels, or idx:DIR with MNIST-style train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] (t10k-* as the test set) [default: synthetic N(0,1)]" };
    public static readonly Option<bool> DataOnSilos = new("--data-on-silos") { Description = "The silos read --data (and --test) themselves, from an absolute path every silo can see (memory-mapped where the files are uncompressed), instead of this client uploading the rows" };
    public static readonly Option<string?> Test = new("--test") { Description = "npy:DIR or idx:DIR whose (training) rows are the job's test set, scored after every epoch [default: the idx t10k files beside --data, if any]" };
    public static readonly Option<int> EvalEvery = new("--eval-every") { Description = "Also score the test and validation sets every N steps (0: only after each epoch and the last step)", DefaultValueFactory = _ => 0 };
    public static readonly Option<double> ValFraction = new("--val-fraction") { Description = "Hold out this fraction of the training rows (ceil(f x N), a random subset seeded by --seed) as a validation set, scored when the test set is and never trained on (0: none)", DefaultValueFactory = _ => 0.0 };
    public static readonly Option<int> EarlyStopping = new("--early-stopping") { Description = "Stop once P evaluations in a row have not lowered the validation loss, and keep the weights of the lowest (needs --val-fraction; 0: off)", DefaultValueFactory = _ => 0 };
    public static readonly Option<double?> Scale = new("--scale") { Description = "idx data: pixel = raw byte x this [default: byte / 255, pixels in [0, 1]]" };
    public static readonly Option<string> Init = new("--init") { Description = "auto (normal on synthetic data, as the seed; with --data: he for relu, else xavier), normal (N(0,1)), xavier, he, or npy:DIR with w1.npy, w2.npy, ...", DefaultValueFactory = _ => Client.JobArguments.AutoInit };
    public static readonly Option<string> Engine = new("--engine") { Description = "Gradient engine: hand (hand-derived) or autograd", DefaultValueFactory = _ => "hand" };
    public static readonly Option<string> Parallel = new("--parallel") { Description = "How workers divide the work: data (each a shard of the batch; the parameter server applies the optimizer), split (each a slice of the first layer's units, for the whole batch, and applies the optimizer to it; bit-identical to 1 worker with --micro-shards 1), or auto: split when every step takes all the data, there are 2 or more workers (at most one per first-layer unit), the engine is hand, the layers above the first hold at most 10% of the parameters, and the job has no validation set and no --eval-every; else data", DefaultValueFactory = _ => "data" };
    public static readonly Option<string> Optimizer = new("--optimizer") { Description = "Update rule: sgd (the seed's), momentum, nesterov, adam, adamw (PyTorch's)", DefaultValueFactory = _ => OptimizerSpec.Sgd.Name };
    public static readonly Option<double> Momentum = new("--momentum") { Description = "μ of momentum and nesterov", DefaultValueFactory = _ => OptimizerSpec.Sgd.Momentum };
    public static readonly Option<double> Beta1 = new("--beta1") { Description = "β1 of adam and adamw", DefaultValueFactory = _ => OptimizerSpec.Sgd.Beta1 };
    public static readonly Option<double> Beta2 = new("--beta2") { Description = "β2 of adam and adamw", DefaultValueFactory = _ => OptimizerSpec.Sgd.Beta2 };
    public static readonly Option<double> Eps = new("--eps") { Description = "ε of adam and adamw", DefaultValueFactory = _ => OptimizerSpec.Sgd.Eps };
    public static readonly Option<double> WeightDecay = new("--weight-decay") { Description = "λ: L2 added to the gradient, or decoupled with adamw (0: off)", DefaultValueFactory = _ => OptimizerSpec.Sgd.WeightDecay };
    public static readonly Option<string> LrSchedule = new("--lr-schedule") { Description = "Learning rate over the steps: constant, step (times --lr-gamma every --lr-step-every steps), cosine (annealed to 0)", DefaultValueFactory = _ => "constant" };
    public static readonly Option<int> WarmupSteps = new("--warmup-steps") { Description = "Steps of linear warm-up before the schedule (0: none)", DefaultValueFactory = _ => OptimizerSpec.Sgd.WarmupSteps };
    public static readonly Option<int> LrStepEvery = new("--lr-step-every") { Description = "Period in steps of --lr-schedule step", DefaultValueFactory = _ => OptimizerSpec.Sgd.StepEvery };
    public static readonly Option<double> LrGamma = new("--lr-gamma") { Description = "Factor γ of --lr-schedule step", DefaultValueFactory = _ => OptimizerSpec.Sgd.Gamma };
    public static readonly Option<int> MicroShards = new("--micro-shards") { Description = "Fixed parts each batch is cut into (data parallel): workers own whole parts and sums follow one tree over them, so the weights are the same bits for any worker count up to this (0: automatic, one per 32 samples of the batch, from 1 to 4, or the worker count if higher)", DefaultValueFactory = _ => 0 };
    public static readonly Option<int> PsShards = new("--ps-shards") { Description = "Parameter-server shards, each holding a range of the parameters and its optimizer state (data parallel; 0: automatic, one for sgd or on a cluster of a single silo, otherwise one per 16.8M parameters)", DefaultValueFactory = _ => 0 };
    public static readonly Option<string> Precision = new("--precision") { Description = "Training arithmetic: float64 or float32 (hand engine only; stored weights stay float64)", DefaultValueFactory = _ => "float64" };
    public static readonly Option<double> GradientPenalty = new("--gradient-penalty") { Description = "λ of the input-gradient penalty λ·‖∂loss/∂x‖² (autograd engine only)", DefaultValueFactory = _ => 0.0 };
    public static readonly Option<int> CheckpointEvery = new("--checkpoint-every") { Description = "Checkpoint the parameters every K steps (0: only the initial ones), but see --checkpoint-min-seconds", DefaultValueFactory = _ => 100 };
    public static readonly Option<double> CheckpointMinSeconds = new("--checkpoint-min-seconds") { Description = "At least this much training time between checkpoints: a multiple of K steps is one only once this long has passed since the last (0: every multiple is)", DefaultValueFactory = _ => TrainingSpec.DefaultCheckpointMinSeconds };
    public static readonly Option<string?> Resume = new("--resume") { Description = "Continue this finished, cancelled or failed job from its last model state and losses to --steps in all; pass its options and --data again (only --steps, --checkpoint-every and --checkpoint-min-seconds may change)" };
    public static readonly Option<string?> Save = new("--save") { Description = "npy:DIR to write the trained weights to (w1.npy, ...)" };
    public static readonly Option<bool> Json = new("--json") { Description = "One JSON object per line" };
    public static readonly Option<string> Progress = new("--progress") { Description = "How steps are shown: auto (a live bar with step, loss, steps/s, elapsed and ETA when the output is a terminal, else plain), bar, or plain (about ten `step N: loss X` lines); --json always writes JSON lines", DefaultValueFactory = _ => "auto" };
    public static readonly Option<string?> Plot = new("--plot") { Description = "When the job ends, draw its loss against step into this .png or .svg file [default: no plot]" };

    public static readonly Argument<string[]> PlotSources = new("source") { Description = "a job id (with --gateway) or a log written by `trainer train --json` or `trainer watch --json`", Arity = ArgumentArity.OneOrMore };
    public static readonly Option<string> PlotOut = new("--out") { Description = "The plot's file: .png or .svg (by its extension)", DefaultValueFactory = _ => "loss.png" };
    public static readonly Option<bool> LogY = new("--log-y") { Description = "Log scale for the loss axis [default: linear]" };
    public static readonly Option<string> PlotX = new("--x") { Description = "The x axis: step (a job's losses are per step; its eval events carry their epoch)", DefaultValueFactory = _ => "step" };

    // evaluate's and predict's model options: train's names, no defaults of their own (left out, the
    // weights' model.json gives them, or else train's defaults do; SavedModelArguments).
    private const string FromModelJson = "[default: the weights' model.json, else {0}]";
    public static readonly Option<string?> SavedModel = new("--model") { Description = "Layer widths from input to output " + string.Format(FromModelJson, DefaultModel) };
    public static readonly Option<string?> SavedActivation = new("--activation") { Description = "Hidden activation: sigmoid, tanh, relu " + string.Format(FromModelJson, DefaultActivation) };
    public static readonly Option<bool?> SavedBias = new("--bias") { Description = "Every layer has a bias " + string.Format(FromModelJson, "none") };
    public static readonly Option<string?> SavedLoss = new("--loss") { Description = "Loss: sse, mse or ce " + string.Format(FromModelJson, DefaultLoss) };
    public static readonly Option<string?> Weights = new("--weights") { Description = "npy:DIR with the saved weights, as `train --save` or `result --save` wrote them (w1.npy, b1.npy with --bias, w2.npy, ..., and model.json, which gives --model, --activation, --bias and --loss) [required]" };
    public static readonly Option<string?> SavedData = new("--data") { Description = "The samples: npy:DIR with x.npy (N, D_in) and y.npy (targets or integer class labels; predict needs only x.npy), or idx:DIR with MNIST-style train-* and t10k-* files [required]" };
    public static readonly Option<string?> Split = new("--split") { Description = "Which rows of --data: test (the t10k files of idx:DIR) or train (the train-* files, or npy:DIR's rows) [default: test when --data has a test set, else train]" };
    public static readonly Option<string?> PredictOut = new("--out") { Description = "Write every sample's prediction to FILE.npy (the classes: int64, shape (N,)) or FILE.csv (index,class then p0,p1,...: the softmax probabilities for --loss ce, else z0,z1,...: the raw outputs) [default: print the first 10 and the count per class]" };

    public const string StartACluster = "deploy/local/cluster.sh start 3";

    // NOTE: two --gateway options because only `train` can run without a cluster; the others must not promise an embedded silo.
    public static readonly Option<string?> Gateway = new("--gateway") { Description = "host:port[,host:port...] of a running cluster, or redis://host:port for a cluster on Redis membership [default: TRAINER_GATEWAY, else an embedded silo in this process]" };
    public static readonly Option<string?> ClusterGateway = new("--gateway") { Description = $"host:port[,host:port...] of a running cluster, or redis://host:port for a cluster on Redis membership [required, or TRAINER_GATEWAY; start a local cluster with {StartACluster}]" };
    public static readonly Option<string?> PlotGateway = new("--gateway") { Description = "host:port[,host:port...] or redis://host:port of the cluster that runs the jobs to plot [needed only for job ids; default: TRAINER_GATEWAY]" };
    public static readonly Option<string?> TlsCert = new("--tls-cert") { Description = "The cluster's certificate, as its silos were started with: a .pfx (PKCS#12) file, or a PEM certificate with --tls-key (a running cluster only) [default: TRAINER_TLS_CERT, else no TLS]" };
    public static readonly Option<string?> TlsKey = new("--tls-key") { Description = "The PEM private key of --tls-cert, when that file does not hold it [default: TRAINER_TLS_KEY]" };
    public static readonly Option<string?> TlsPassword = new("--tls-password") { Description = "The password of the --tls-cert .pfx or of an encrypted PEM key [default: TRAINER_TLS_PASSWORD]" };
    public static readonly Option<string> ClusterId = new("--cluster-id") { Description = "Cluster id of the running cluster", DefaultValueFactory = _ => "trainer" };
    public static readonly Option<string> ServiceId = new("--service-id") { Description = "Service id of the running cluster", DefaultValueFactory = _ => "trainer" };
    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Show the cluster's log on stderr, and how long connecting (and, for status, the job's answer) took" };
    public static readonly Option<int?> DashboardPort = new("--dashboard-port") { Description = "Serve the embedded silo's web dashboard on http://127.0.0.1:PORT/ while the job runs [default: none; a running cluster's silos serve their own]" };

    public static readonly Option<bool> FromStart = new("--from-start") { Description = "Replay every loss from step 1 (default: from now on)" };
    public static readonly Argument<string> JobId = new("job") { Description = "a job id, as printed by submit or list" };

    public static Option[] JobOptions =>
        [Model, Activation, Loss, Bias, LearningRate, Batch, Epochs, DropLast, Steps, Workers, Seed, Data, DataOnSilos, Test, EvalEvery, ValFraction, EarlyStopping, Scale, Init, Engine, Parallel,
         Optimizer, Momentum, Beta1, Beta2, Eps, WeightDecay, LrSchedule, WarmupSteps, LrStepEvery, LrGamma, PsShards, MicroShards,
         Precision, GradientPenalty, CheckpointEvery, CheckpointMinSeconds, Resume];

    /// <summary>The model the saved weights were trained as: their model.json's, or the options, and defaults, of `train`.</summary>
    public static Option[] SavedModelOptions => [Weights, SavedModel, SavedActivation, SavedBias, SavedLoss, SavedData, Scale, Split];

    public static SavedModelArguments SavedModelArguments(ParseResult r) => new()
    {
        Weights = r.GetValue(Weights),
        // null when left out: the weights' model.json gives it, where there is one.
        Model = r.GetValue(SavedModel),
        Activation = r.GetValue(SavedActivation),
        Loss = r.GetValue(SavedLoss),
        Bias = r.GetValue(SavedBias),
        Data = r.GetValue(SavedData),
        Scale = r.GetValue(Scale),
        Split = r.GetValue(Split),
    };

    /// <summary>The connection options of `train` (which may run an embedded silo) and, with <paramref name="embedded"/> false, of the commands that need a running cluster.</summary>
    public static Option[] ConnectionOptions(bool embedded) => ConnectionOptions(embedded ? Gateway : ClusterGateway);

    public static Option[] ConnectionOptions(Option<string?> gateway) => [gateway, TlsCert, TlsKey, TlsPassword, ClusterId, ServiceId, Verbose];

    public static JobArguments JobArguments(ParseResult r) => new()
    {
        Model = r.GetValue(Model)!,
        Activation = r.GetValue(Activation)!,
        Loss = r.GetValue(Loss)!,
        Bias = r.GetValue(Bias),
        LearningRate = r.GetValue(LearningRate),
        Batch = r.GetValue(Batch),
        // null when not typed: --epochs may then set the steps.
        Steps = r.GetResult(Steps) is { Implicit: false } ? r.GetValue(Steps) : null,
        Epochs = r.GetValue(Epochs),
        DropLast = r.GetValue(DropLast),
        Test = r.GetValue(Test),
        EvalEvery = r.GetValue(EvalEvery),
        ValFraction = r.GetValue(ValFraction),
        EarlyStopping = r.GetValue(EarlyStopping),
        Workers = r.GetValue(Workers),
        Seed = r.GetValue(Seed),
        Data = r.GetValue(Data),
        DataOnSilos = r.GetValue(DataOnSilos),
        Scale = r.GetValue(Scale),
        Init = r.GetValue(Init)!,
        Engine = r.GetValue(Engine)!,
        Precision = r.GetValue(Precision)!,
        Parallel = r.GetValue(Parallel)!,
        Optimizer = r.GetValue(Optimizer)!,
        Momentum = r.GetValue(Momentum),
        Beta1 = r.GetValue(Beta1),
        Beta2 = r.GetValue(Beta2),
        Eps = r.GetValue(Eps),
        WeightDecay = r.GetValue(WeightDecay),
        LrSchedule = r.GetValue(LrSchedule)!,
        WarmupSteps = r.GetValue(WarmupSteps),
        LrStepEvery = r.GetValue(LrStepEvery),
        LrGamma = r.GetValue(LrGamma),
        TypedOptimizerOptions = new HashSet<Option>([Momentum, Beta1, Beta2, Eps, LrStepEvery, LrGamma])
            .Where(o => r.GetResult(o) is { Implicit: false }).Select(o => o.Name.TrimStart('-')).ToHashSet(),
        PsShards = r.GetValue(PsShards),
        MicroShards = r.GetValue(MicroShards),
        GradientPenalty = r.GetValue(GradientPenalty),
        CheckpointEvery = r.GetValue(CheckpointEvery),
        CheckpointMinSeconds = r.GetValue(CheckpointMinSeconds),
        Resume = r.GetValue(Resume),
    };

    public static Command With(this Command command, params IEnumerable<Symbol>[] groups)
    {
        foreach (var symbol in groups.SelectMany(g => g))
        {
            if (symbol is Option option) command.Options.Add(option);
            else if (symbol is Argument argument) command.Arguments.Add(argument);
        }
        return command;
    }
}
