using Trainer.Abstractions;
using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;
using Trainer.Grains;

namespace Trainer.Client;

/// <summary>The job-defining options of `trainer train` / `trainer submit`, as typed by the user.</summary>
internal sealed record JobArguments
{
    public string Model { get; init; } = "1000-100-10";
    public string Activation { get; init; } = "sigmoid";
    public string Loss { get; init; } = "sse";
    public bool Bias { get; init; }
    public double LearningRate { get; init; } = 1e-5;
    /// <summary>Null: 64 for synthetic data, every training row for npy or idx data.</summary>
    public int? Batch { get; init; }
    /// <summary>Null: <see cref="JobArgumentsDefaults.Steps"/>, or what <see cref="Epochs"/> makes of it.</summary>
    public int? Steps { get; init; }
    /// <summary>Passes over the data; sets the steps (refused together with <see cref="Steps"/>).</summary>
    public int? Epochs { get; init; }
    public bool DropLast { get; init; }
    /// <summary>--test: a folder whose rows are the test set (instead of the idx t10k files beside --data).</summary>
    public string? Test { get; init; }
    public int EvalEvery { get; init; }
    /// <summary>--val-fraction: the share of the training rows held out as a validation set (<see cref="ValidationSplit"/>); 0: none.</summary>
    public double ValFraction { get; init; }
    /// <summary>--early-stopping: evaluations without a better validation loss before the job stops; 0: off.</summary>
    public int EarlyStopping { get; init; }
    public int Workers { get; init; } = 2;
    public int Seed { get; init; }
    public string? Data { get; init; }
    /// <summary>idx data only: raw pixel bytes are multiplied by this; null: divided by 255 (pixels in [0, 1]).</summary>
    public double? Scale { get; init; }
    public string Init { get; init; } = AutoInit;

    /// <summary>
    /// --init's default: the seed's N(0,1) on synthetic data (the tutorial's job keeps its bits), and
    /// the usual scaled draw on real data, He for relu and Xavier otherwise: N(0,1) weights on 784
    /// inputs start a classifier with logits in the hundreds.
    /// </summary>
    public const string AutoInit = "auto";
    public string Engine { get; init; } = "hand";
    public string Precision { get; init; } = "float64";
    public string Parallel { get; init; } = "data";
    public string Optimizer { get; init; } = "sgd";
    public double Momentum { get; init; } = OptimizerSpec.Sgd.Momentum;
    public double Beta1 { get; init; } = OptimizerSpec.Sgd.Beta1;
    public double Beta2 { get; init; } = OptimizerSpec.Sgd.Beta2;
    public double Eps { get; init; } = OptimizerSpec.Sgd.Eps;
    public double WeightDecay { get; init; } = OptimizerSpec.Sgd.WeightDecay;
    public string LrSchedule { get; init; } = "constant";
    public int WarmupSteps { get; init; } = OptimizerSpec.Sgd.WarmupSteps;
    public int LrStepEvery { get; init; } = OptimizerSpec.Sgd.StepEvery;
    public double LrGamma { get; init; } = OptimizerSpec.Sgd.Gamma;
    /// <summary>The optimizer's and the schedule's options typed on the command line ("momentum", "lr-gamma", ...), whatever their values.</summary>
    public IReadOnlySet<string> TypedOptimizerOptions { get; init; } = new HashSet<string>();
    public int PsShards { get; init; }
    public int MicroShards { get; init; }
    public double GradientPenalty { get; init; }
    public int CheckpointEvery { get; init; } = 100;
    public double CheckpointMinSeconds { get; init; } = TrainingSpec.DefaultCheckpointMinSeconds;
    /// <summary>The id of a finished job to continue (<see cref="JobSubmission.ResumeFrom"/>); null: start from step 0.</summary>
    public string? Resume { get; init; }

    public const int SyntheticBatch = 64;

    /// <summary>--data-on-silos: the silos read --data (and --test) from the paths themselves; nothing is uploaded.</summary>
    public bool DataOnSilos { get; init; }

    /// <summary>
    /// With <see cref="DataOnSilos"/>: the one silo is an embedded one, in this process (<see cref="InPlace"/>);
    /// the paths may be relative, and the job is sent them made absolute.
    /// </summary>
    public bool ReadInPlace { get; init; }

    /// <summary>
    /// These arguments with --data read in place by an embedded silo, as --data-on-silos has every silo read
    /// it; null without --data or with --data-on-silos typed. The embedded silo is this process, so an upload
    /// would only copy the rows: as float64, into the job grain, its storage and the silo's shared rows.
    /// </summary>
    public JobArguments? InPlace() => Data is null || DataOnSilos ? null : this with { DataOnSilos = true, ReadInPlace = true };

    /// <summary>
    /// With <see cref="DataOnSilos"/>: the files a silo must open, as typed, checked here as far as the client can
    /// without reading them (--data given, absolute paths unless <see cref="ReadInPlace"/>, --scale only with idx); null otherwise.
    /// </summary>
    public SiloData? SiloDataCheck()
    {
        if (!DataOnSilos) return null;
        if (Data is null)
            throw new SpecException("data-on-silos", "true", "allowed only with --data npy:DIR or idx:DIR at a path every silo can see (synthetic data is drawn from the seed, not read)");
        if (!ReadInPlace)
        {
            SiloJobData.RequireAbsolute("data", Data);
            if (Test is { } test) SiloJobData.RequireAbsolute("test", test);
        }
        if (Scale is { } scale && DataFolders.Folder(Data, DataFolders.IdxScheme) is null) throw DataFiles.ScaleOnlyWithIdx(scale);
        return new SiloData(Data, Test, Scale);
    }

    /// <summary>What the job is sent: <see cref="SiloDataCheck"/>'s paths, made absolute when read in place.</summary>
    private SiloData? SiloData() => SiloDataCheck() is not { } typed ? null
        : ReadInPlace ? typed with { Data = Absolute(typed.Data), Test = typed.Test is { } test ? Absolute(test) : null } : typed;

    private static string Absolute(string value) =>
        DataFolders.Folder(value, DataFolders.NpyScheme) is { } npy ? DataFolders.NpyScheme + Path.GetFullPath(npy)
        : DataFolders.Folder(value, DataFolders.IdxScheme) is { } idx ? DataFolders.IdxScheme + Path.GetFullPath(idx)
        : value;

    private SiloDataFacts RequireOnSilos(SiloDataFacts? facts)
    {
        SiloDataCheck();
        return facts ?? throw new InvalidOperationException("--data-on-silos: the silos' facts about the files are needed to build the job.");
    }

    /// <summary>
    /// A note naming the optimizer and schedule options typed for a rule or schedule that does not use them;
    /// null when there is none.
    /// </summary>
    public string? UnusedOptionsNote()
    {
        // Typed but not used by the rule or the schedule chosen: the job runs (the values are valid), but a
        // PyTorch user's `SGD(momentum=0.9)` is --optimizer momentum here, and would silently be plain SGD.
        var kind = OptimizerSpec.ParseKind(Optimizer);
        var schedule = OptimizerSpec.ParseSchedule(LrSchedule);
        var unused = new List<string>();
        if (TypedOptimizerOptions.Contains("momentum") && kind is not (OptimizerKind.Momentum or OptimizerKind.Nesterov))
            unused.Add($"--momentum {Format(Momentum)} (only --optimizer momentum and nesterov use it; PyTorch's SGD(momentum=μ) is --optimizer momentum)");
        foreach (var (name, value) in new[] { ("beta1", Beta1), ("beta2", Beta2), ("eps", Eps) })
            if (TypedOptimizerOptions.Contains(name) && kind is not (OptimizerKind.Adam or OptimizerKind.AdamW))
                unused.Add($"--{name} {Format(value)} (only --optimizer adam and adamw use it)");
        foreach (var (name, value) in new[] { ("lr-step-every", (double)LrStepEvery), ("lr-gamma", LrGamma) })
            if (TypedOptimizerOptions.Contains(name) && schedule != ScheduleKind.Step)
                unused.Add($"--{name} {Format(value)} (only --lr-schedule step uses it)");
        return unused.Count == 0 ? null
            : $"--optimizer {Optimizer.Trim().ToLowerInvariant()} with --lr-schedule {LrSchedule.Trim().ToLowerInvariant()} does not use {string.Join("; nor ", unused)}";

        static string Format(double value) => value.ToString("G", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// A note when --init's folder has a model.json (<see cref="WeightsManifest"/>) whose activation or loss
    /// differ from this job's: the weights load (their shapes fit) but were trained as another model,
    /// which is legitimate (fine-tuning under another loss) and more often a forgotten --activation.
    /// Another width or bias never gets here: the weights' shapes are refused when they load.
    /// </summary>
    public string? InitModelNote()
    {
        if (!Init.StartsWith(NpyFiles.Scheme, StringComparison.Ordinal)) return null;
        var folder = NpyFiles.Folder("init", Init);
        if (WeightsManifest.ReadModel("init", folder) is not { } trained) return null;
        var model = ParseModel();
        if (trained.Activation == model.Activation && trained.Loss == model.Loss) return null;
        return $"the --init weights were trained as {trained} ({Path.Combine(folder, WeightsManifest.FileName)}); this job runs them as {model}";
    }

    /// <summary>The model --model, --activation, --loss and --bias describe.</summary>
    public ModelSpec ParseModel() => ModelSpec.Parse(Model, Activation, Loss, Bias);

    /// <summary>--val-fraction's count of <paramref name="rows"/> training rows held out (the silos pick them, from the seed).</summary>
    private int HeldOutCount(int rows) => ValFraction == 0 ? 0 : ValidationSplit.CountFor(rows, ValFraction);

    /// <summary>The training rows, then the validation set's and the test set's (when there are): the rows the job uploads.</summary>
    private static ISampleRows UploadRows(ISampleRows training, params ISampleRows?[] heldOut)
    {
        ISampleRows[] parts = [training, .. heldOut.OfType<ISampleRows>()];
        return parts.Length == 1 ? training : new ConcatenatedRows(parts);
    }

    /// <summary>
    /// --val-fraction's split of the job's rows: <paramref name="data"/>'s, or with synthetic data
    /// (null) the --batch rows drawn here from the seed, so they are split as a file's would be.
    /// Null when no row is held out.
    /// </summary>
    private (ISampleRows Training, ISampleRows Validation)? HoldOut(ISampleRows? data, ModelSpec model)
    {
        if (ValFraction == 0) return null;
        int samples = data?.Count ?? Batch ?? SyntheticBatch;
        // Validate names a batch that is not a count of samples.
        if (samples <= 0 || samples > TrainingSpec.MaxBatchFor(model, Trainer.Core.Training.Precision.Float64)) return null;
        int count = ValidationSplit.CountFor(samples, ValFraction);
        if (count == 0) return null;
        var rows = data ?? Synthetic.Data(samples, model.InputSize, model.OutputSize, Seed);
        var split = new ValidationSplit(samples, count, Seed);
        return (split.Training(rows), split.Validation(rows));
    }

    /// <summary>--steps, or --epochs passes over the data in batches of <paramref name="batch"/> (<paramref name="samples"/> 0: one batch is all of it).</summary>
    private int StepsFor(int batch, int samples)
    {
        if (Epochs is not { } epochs) return Steps ?? JobArgumentsDefaults.Steps;
        if (Steps is { } steps)
            throw new SpecException("epochs", epochs, $"allowed only without --steps (given: {steps}); give one of them");
        if (epochs <= 0)
            throw new SpecException("epochs", epochs, "allowed: a whole number of passes over the data from 1");
        if (batch <= 0) return epochs; // Validate names the batch.
        long total = new Trainer.Core.Data.BatchSchedule(samples == 0 ? batch : samples, batch, DropLast, Seed).StepsFor(epochs);
        if (total > TrainingSpec.MaxSteps)
            throw new SpecException("epochs", epochs, $"allowed: at most {TrainingSpec.MaxSteps} steps in all; {epochs} epochs of this data are {total}");
        return (int)total;
    }

    /// <summary>
    /// The --data the job trains on, read and checked against <paramref name="model"/>: its training rows
    /// and, for idx data with t10k files, its test set; null for synthetic data.
    /// </summary>
    public LoadedData? LoadData(ModelSpec model)
    {
        using var opened = OpenData(model);
        return opened is null ? null : new LoadedData(opened.Train.ToDataset(), opened.Test?.ToDataset(), opened.Description);
    }

    /// <summary>
    /// The --data files, opened (held until disposed) and checked against <paramref name="model"/>: their
    /// rows are read in place; null for synthetic data.
    /// </summary>
    private OpenedData? OpenData(ModelSpec model)
    {
        if (Data is null)
        {
            if (Scale is { } scale) throw DataFiles.ScaleOnlyWithIdx(scale);
            if (model.Loss == LossKind.CrossEntropy)
                throw new SpecException("loss", model.Loss.Name(), "allowed only with class data: --data npy:DIR or idx:DIR (the synthetic targets are N(0,1) values, not classes)");
            return null;
        }
        var opened = DataFiles.Open(Data, model, Scale);
        try
        {
            DataFiles.RequireFits(model, opened.Description, opened.Train.InputSize, opened.Train.OutputSize);
            return opened;
        }
        catch
        {
            opened.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The job's test set as `train` scores the trained weights on it itself (a job that scores its test set
    /// does not need this): --test's rows, or the t10k files beside --data, read again from the files; null without one.
    /// </summary>
    public Dataset? LoadTestSet(ModelSpec model)
    {
        if (Data is null || DataOnSilos && !ReadInPlace) return null;
        using var opened = Test is { } folder ? DataFiles.Open(folder, model, Scale, "test") : DataFiles.Open(Data, model, Scale);
        return (Test is null ? opened.Test : opened.Train)?.ToDataset();
    }

    /// <summary>
    /// Turns the arguments into a submission, its samples read from the data files into it. Every check that
    /// can be made here is made before the cluster is contacted; errors are <see cref="SpecException"/>s.
    /// </summary>
    /// <param name="onSilos">With <see cref="DataOnSilos"/>: what a silo found in the files (<see cref="SiloDataCheck"/>).</param>
    public JobSubmission ToSubmission(SiloDataFacts? onSilos = null)
    {
        using var prepared = Prepare(onSilos);
        return prepared.WithSamples();
    }

    /// <summary>
    /// Turns the arguments into a job ready to submit, with every check <see cref="ToSubmission"/> makes; the
    /// data files stay open in it, and its upload reads their rows a chunk at a time (<see cref="PreparedJob"/>).
    /// </summary>
    public PreparedJob Prepare(SiloDataFacts? onSilos = null)
    {
        var files = new List<IDisposable>();
        try
        {
            return Build(onSilos, files);
        }
        catch
        {
            foreach (var opened in files) opened.Dispose();
            throw;
        }
    }

    /// <param name="files">Collects the data files opened, which the job holds (or the caller disposes, on an error).</param>
    private PreparedJob Build(SiloDataFacts? onSilos, List<IDisposable> files)
    {
        var model = ParseModel();
        var engine = TrainingSpec.ParseEngine(Engine);
        var precision = Precisions.Parse(Precision);
        var parallelism = TrainingSpec.ParseParallelism(Parallel);
        var optimizer = new OptimizerSpec
        {
            Kind = OptimizerSpec.ParseKind(Optimizer),
            Momentum = Momentum,
            Beta1 = Beta1,
            Beta2 = Beta2,
            Eps = Eps,
            WeightDecay = WeightDecay,
            Schedule = OptimizerSpec.ParseSchedule(LrSchedule),
            WarmupSteps = WarmupSteps,
            StepEvery = LrStepEvery,
            Gamma = LrGamma,
        };
        // The training rows (uploaded: read in place here; on the silos: counted there), the held-out ones, and the job line's words for them.
        ISampleRows? data = null, validation = null, test = null;
        int? rows = null;
        int validationRows = 0, testRows = 0;
        string dataDescription = $"synthetic N(0,1), seed {Seed}";
        var opened = DataOnSilos ? null : OpenData(model);
        if (opened is not null) files.Add(opened);
        if (DataOnSilos)
        {
            var facts = RequireOnSilos(onSilos);
            DataFiles.RequireFits(model, Data!, facts.InputSize, facts.OutputSize);
            (rows, testRows) = (facts.Samples, facts.TestSamples);
        }
        else if (opened is not null)
        {
            data = opened.Train;
            test = opened.Test;
            if (Test is { } testFolder)
            {
                var other = DataFiles.Open(testFolder, model, Scale, "test");
                files.Add(other);
                DataFolders.RequireSameRows(testFolder, other.Train, opened.Description, opened.Train);
                test = other.Train;
            }
            (rows, testRows) = (data.Count, test?.Count ?? 0);
        }
        else if (Test is { } given)
            throw new SpecException("test", given, "allowed only with --data (a test set scores a job trained on real data)");
        string? source = ReadInPlace ? Data : DataOnSilos ? $"{Data} on the silos" : opened?.Description;
        if (rows is { } count)
        {
            if (Batch is { } b && b > count)
                throw new SpecException("batch", b, $"the data in {source} has {count} samples, so at most {count}");
            dataDescription = $"{source} ({count} samples{(testRows == 0 ? "" : $", {testRows} test")})";
        }
        var split = DataOnSilos ? null : HoldOut(data, model);
        int heldOut = DataOnSilos ? HeldOutCount(rows!.Value) : split?.Validation.Count ?? 0;
        if (heldOut > 0)
        {
            int all = rows ?? Batch ?? SyntheticBatch;
            // Synthetic data is one full batch: of the rows the split leaves.
            if (rows is not null && Batch is { } given && given > all - heldOut)
                throw new SpecException(ValidationSplit.Field, ValFraction,
                    $"it holds out {heldOut} of the {all} samples, leaving {all - heldOut}: fewer than one batch of {given}; lower --val-fraction or --batch");
            dataDescription = rows is null ? $"{dataDescription} ({all} samples drawn, {heldOut} held out for validation)"
                : $"{source} ({all} samples, {heldOut} held out for validation{(testRows == 0 ? "" : $", {testRows} test")})";
            if (split is { } uploaded) (data, validation) = uploaded;
            validationRows = heldOut;
            rows = all - heldOut;
        }
        if (EvalEvery != 0 && testRows == 0 && validationRows == 0)
            throw new SpecException("eval-every", EvalEvery, "allowed only with a test set (idx t10k files beside --data, or --test) or a validation set (--val-fraction)");
        // Synthetic data is one full batch of --batch samples; real data is gone through in mini-batches of it.
        bool real = Data is not null;
        int batch = !real && validationRows > 0 ? rows!.Value : Batch ?? rows ?? SyntheticBatch;
        int samples = real && batch > 0 && batch < rows!.Value ? rows.Value : 0;
        if (DropLast && samples == 0)
            throw new SpecException("drop-last", "true", $"allowed only with mini-batches: --data and a --batch below its sample count ({(!real ? "synthetic data is one batch" : $"{rows} samples")})");
        int steps = StepsFor(batch, samples);

        InitKind initKind = InitKind.Normal;
        TensorPayload? initial = null;
        string initDescription;
        if (Init.StartsWith(NpyFiles.Scheme, StringComparison.Ordinal))
        {
            var folder = NpyFiles.Folder("init", Init);
            initial = TensorPayload.From(NpyFiles.LoadParameters("init", folder, model));
            initDescription = Init;
        }
        else
        {
            initKind = Init.Trim().Equals(AutoInit, StringComparison.OrdinalIgnoreCase)
                ? !real ? InitKind.Normal : model.Activation == Trainer.Core.Models.Activation.Relu ? InitKind.He : InitKind.Xavier
                : Init.Trim().ToLowerInvariant() is "normal" or "xavier" or "he" ? Initializer.Parse(Init)
                : throw new SpecException("init", Init, "allowed: auto, normal, xavier, he, or npy:DIR");
            initDescription = $"{initKind.Name()}, seed {Seed}";
        }

        var spec = new TrainingSpec
        {
            Model = model,
            LearningRate = LearningRate,
            Batch = batch,
            Samples = samples,
            DropLast = DropLast,
            Steps = steps,
            Workers = Workers,
            Seed = Seed,
            Init = initKind,
            Engine = engine,
            Precision = precision,
            Parallelism = parallelism ?? Parallelism.Data,
            Optimizer = optimizer,
            ParameterServerShards = PsShards,
            MicroShards = MicroShards,
            GradientPenalty = GradientPenalty,
            CheckpointEvery = CheckpointEvery,
            CheckpointMinSeconds = CheckpointMinSeconds,
            // The test set travels after the training rows; the job scores its parameters on it.
            TestSamples = testRows,
            // The validation rows travel between the training rows and the test set's.
            ValidationSamples = validationRows,
            EarlyStopping = EarlyStopping,
            EvalEvery = EvalEvery,
        };
        spec = (parallelism is null ? spec.WithPreferredParallelism() : spec).Validate();
        // NOTE: a split job's parameter server does not score it; `train` scores the test set itself, which it cannot read here (but can in place).
        if (DataOnSilos && !ReadInPlace && spec.Parallelism == Parallelism.SplitFirstLayer && testRows > 0)
            throw new SpecException("data-on-silos", "true", $"allowed with --parallel split only without a test set ({testRows} test rows here: --test, or idx t10k files): a split job's test set is scored by the client, which does not read the files; drop --data-on-silos or the test set");

        if (Resume is { } resume && string.IsNullOrWhiteSpace(resume))
            throw new SpecException("resume", resume, "allowed: the id of a finished job (see `trainer list`)");
        return new PreparedJob(new JobSubmission(spec, null, initial, dataDescription, initDescription, ResumeFrom: Resume, SiloData: SiloData()),
            data is null ? null : UploadRows(data, validation, test), [.. files]);
    }
}

/// <summary>Defaults shared by the options and <see cref="JobArguments"/>.</summary>
internal static class JobArgumentsDefaults
{
    public const int Steps = 3000;
}
