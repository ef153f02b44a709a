using System.CommandLine;
using System.Globalization;
using Trainer.Abstractions;
using Trainer.Core;
using Trainer.Core.Linalg;
using Trainer.Core.Training;
using Trainer.Grains;

namespace Trainer.Client;

/// <summary>
/// The `trainer` commands. Each handler returns the process exit code (see <see cref="ExitCodes"/>).
/// <paramref name="outputIsTerminal"/>: whether <paramref name="output"/> is a terminal, where
/// `--progress auto` shows a live display (<see cref="ProgressReporters"/>).
/// </summary>
internal sealed partial class Commands(TextWriter output, TextWriter error, bool outputIsTerminal = false)
{
    private readonly ClusterRetry _retry = new(error);

    /// <summary>How long a command may take to wind down after Ctrl+C or SIGTERM (cancel its job, stop its silo).</summary>
    public static readonly TimeSpan TerminationTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Parses and runs one command line. A usage error is one line on stderr and exit code 2.</summary>
    public async Task<int> RunAsync(string[] args)
    {
        var parsed = Build().Parse(args);
        if (parsed.Action is not { ClearsParseErrors: true } && UsageErrors.Find(parsed) is { } usage)
        {
            error.WriteLine($"trainer: error: {usage}");
            return ExitCodes.BadInput;
        }
        // Ctrl+C or SIGTERM cancels the command's token: `train` cancels its job, every command stops its
        // client or embedded silo and exits with 130. A command still busy after the timeout is cut short.
        // NOTE: set here, not left to System.CommandLine's default: without it nothing answered the signals
        // once a client's host had registered its own handlers, and `watch` went on to the job's end.
        return await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = TerminationTimeout });
    }

    public RootCommand Build()
    {
        var root = new RootCommand("Trainer: distributed neural-network training on an Orleans cluster.");
        root.Subcommands.Add(Command("train", "Submit a job and watch it to the end (with no --gateway: on an embedded silo)",
            Train, CliOptions.JobOptions, [CliOptions.Save, CliOptions.Plot, CliOptions.Json, CliOptions.Progress, CliOptions.DashboardPort], CliOptions.ConnectionOptions(embedded: true)));
        root.Subcommands.Add(Command("submit", "Submit a job to a running cluster and print its id at once",
            Submit, CliOptions.JobOptions, [CliOptions.Json], CliOptions.ConnectionOptions(embedded: false)));
        root.Subcommands.Add(Command("watch", "Stream a job's losses until it ends",
            Watch, [CliOptions.JobId, CliOptions.FromStart, CliOptions.Json, CliOptions.Progress], CliOptions.ConnectionOptions(embedded: false)));
        root.Subcommands.Add(Command("status", "Show a job's state", Status, [CliOptions.JobId, CliOptions.Json], CliOptions.ConnectionOptions(embedded: false)));
        root.Subcommands.Add(Command("list", "List the cluster's jobs", List, [CliOptions.Json], CliOptions.ConnectionOptions(embedded: false)));
        root.Subcommands.Add(Command("cancel", "Cancel a running job", Cancel, [CliOptions.JobId, CliOptions.Json], CliOptions.ConnectionOptions(embedded: false)));
        root.Subcommands.Add(Command("result", "Print a finished job's summary; --save fetches its weights",
            Result, [CliOptions.JobId, CliOptions.Save, CliOptions.Json], CliOptions.ConnectionOptions(embedded: false)));
        root.Subcommands.Add(Command("plot", "Draw loss against step for jobs or --json logs into a PNG or SVG file",
            Plot, [CliOptions.PlotSources, CliOptions.PlotOut, CliOptions.LogY, CliOptions.PlotX], CliOptions.ConnectionOptions(CliOptions.PlotGateway)));
        // NOTE: no --gateway: these run the saved weights in this process; a forward pass needs no cluster.
        root.Subcommands.Add(Command("evaluate", "Print saved weights' loss (and accuracy, for class data) on --data, in this process (no cluster, no --gateway): the model is the weights' model.json, or else --model, --activation, --bias and --loss as typed",
            Evaluate, CliOptions.SavedModelOptions, [CliOptions.Json]));
        root.Subcommands.Add(Command("predict", "Predict the class of every sample of --data with saved weights, in this process (no cluster, no --gateway): the first 10 and the count per class, or all of them into --out",
            Predict, CliOptions.SavedModelOptions, [CliOptions.PredictOut, CliOptions.Json]));
        HelpExamples.Install(root);
        return root;
    }

    private Command Command(string name, string description, Func<ParseResult, CancellationToken, Task<int>> handler, params IEnumerable<Symbol>[] symbols)
    {
        var command = new Command(name, description).With(symbols);
        command.SetAction((result, cancellation) => Guarded(result, cancellation, handler));
        return command;
    }

    private async Task<int> Train(ParseResult r, CancellationToken cancellation)
    {
        var arguments = CliOptions.JobArguments(r);
        if (arguments.InitModelNote() is { } note) error.WriteLine($"trainer: note: {note}");
        if (arguments.UnusedOptionsNote() is { } unused) error.WriteLine($"trainer: note: {unused}");
        // An embedded silo reads the data in place, opened and checked here, before it starts; data the silos of a
        // cluster read is checked (and counted) by a silo, once connected; any other data is opened and checked here, before.
        using var inPlace = Gateway(r) is null ? InPlaceData.Open(arguments) : null;
        arguments = inPlace?.Arguments ?? arguments;
        using var prepared = arguments.SiloDataCheck() is null ? arguments.Prepare() : null;
        var saveFolder = PrepareSave(r);
        var plotFile = r.GetValue(CliOptions.Plot) is { } plot ? PlotFile.Parse("plot", plot) : null;
        bool json = r.GetValue(CliOptions.Json);
        var progress = Progress(r);
        var dashboardPort = r.GetValue(CliOptions.DashboardPort);
        if (dashboardPort is not null && Gateway(r) is not null)
            throw new SpecException("dashboard-port", dashboardPort,
                "allowed only with an embedded silo (no --gateway): a running cluster's silos serve their own dashboards (deploy/local/cluster.sh: silo i on http://127.0.0.1:8080+i/)");
        await using var cluster = await Connect(r, cancellation, dashboardPort, inPlace?.Files);
        var jobId = NewJobId();
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(jobId);
        var submission = inPlace?.Submission ?? prepared?.Submission ?? await OnSilosAsync(arguments, job, cancellation);
        if (JobLine.MicroShardsNote(submission.Spec) is { } shards) error.WriteLine($"trainer: note: {shards}");
        var started = await SubmitAsync(job, submission, arguments, prepared, cancellation);
        if (!json)
            output.WriteLine($"job {jobId} on {cluster.Description}: {JobLine.Describe(started.Spec is { } running ? submission with { Spec = running } : submission)}"
                + (Gateway(r) is null ? $", GEMM {Blas.Describe(Blas.Default)}" : started.Spec?.Gemm is { } gemm ? $", GEMM {gemm}" : "") + JobLine.Resumed(started));
        var watcher = new JobWatcher(output, error, json);
        JobStatus final;
        try
        {
            // A resumed job's earlier steps were the old job's, watched then.
            final = await watcher.WatchAsync(job, started.ResumedAtStep + 1, progress, cancellation);
        }
        catch (OperationCanceledException)
        {
            // Interrupted: the job is cancelled, and let end before this process (an embedded silo's) stops.
            await job.CancelAsync();
            await EndOfAsync(job, TerminationTimeout / 2);
            throw;
        }
        // The trained weights on the data's test set: the figure a classifier is judged by. A
        // data-parallel job scores them itself after its last step; otherwise they are scored here,
        // on the test rows read again from the files (the upload let them go), on the job's GEMM kernel
        // where this process runs it (else on its own, which agrees to rounding).
        var scoredByJob = final.State == JobState.Completed ? FinalEval(final) : null;
        var test = final.State != JobState.Completed ? null
            : scoredByJob ?? (arguments.LoadTestSet(final.Spec!.Model) is not { } testSet ? null
                : Scored(final, await new Evaluation(final.Spec!.Model, blas: JobKernel(final.Spec)).EvaluateAsync((await _retry.RunAsync(() => job.ReadParametersAsync(), cancellation)).ToArray(), testSet, Environment.ProcessorCount, Task.Run)));
        // Scored here, the evaluation after the last step is this one: it gets its eval event as a job's own do.
        if (scoredByJob is null && test is not null) progress.ReportEval(test);
        watcher.WriteOutcome(final, test);
        if (saveFolder is not null && final.State == JobState.Completed)
            await SaveAsync(job, final, saveFolder, json, cancellation);
        if (plotFile is not null && final.StepsCompleted > 0)
            await PlotTrainedAsync(job, jobId, plotFile, json, cancellation);
        return ExitCodes.For(final.State);
    }

    /// <summary>Waits, at most <paramref name="patience"/>, for a cancelled job to reach its end: its grains wind down before the caller's silo may stop.</summary>
    private static async Task EndOfAsync(ITrainingJobGrain job, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        while (DateTime.UtcNow < deadline && !(await job.GetStatusAsync()).IsTerminal)
            await Task.Delay(TimeSpan.FromMilliseconds(50));
    }

    /// <summary>
    /// Uploads and submits the job through a moment's failure in the cluster (<see cref="ClusterRetry.SubmitAsync"/>).
    /// The prepared upload lets its data files go as it sends them, so an attempt after the first prepares them again.
    /// </summary>
    private Task<JobStatus> SubmitAsync(ITrainingJobGrain job, JobSubmission submission, JobArguments arguments, PreparedJob? prepared, CancellationToken cancellation)
    {
        return _retry.SubmitAsync(job, async again =>
        {
            if (prepared is null) return await job.UploadAndSubmitAsync(submission, ClusterConnection.ChunkBytes);
            if (!again) return await prepared.SubmitAsync(job, ClusterConnection.ChunkBytes);
            using var reopened = arguments.Prepare();
            return await reopened.SubmitAsync(job, ClusterConnection.ChunkBytes);
        }, cancellation);
    }

    /// <summary>
    /// The submission of a job whose data stays on the silos: the job's grain opens and checks the files on
    /// its silo for the model (a refusal names the file and the silo: exit 2, nothing started), and the
    /// spec is built from what they hold.
    /// </summary>
    private async Task<JobSubmission> OnSilosAsync(JobArguments arguments, ITrainingJobGrain job, CancellationToken cancellation)
    {
        var model = arguments.ParseModel();
        var facts = await _retry.RunAsync(() => job.InspectDataAsync(arguments.SiloDataCheck()!, model), cancellation);
        return arguments.ToSubmission(onSilos: facts);
    }

    /// <summary>The job's own score of its final parameters on its test set, if it made one.</summary>
    private static EvalRecord? FinalEval(JobStatus status) =>
        status.LastEval is { } last && last.Step == FinalWeightsStep(status) && status.State == JobState.Completed ? last : null;

    /// <summary>The step after which the job's final weights are: its last, or with early stopping its best.</summary>
    private static int FinalWeightsStep(JobStatus status) => status.Stopping is { BestStep: > 0 } best ? best.BestStep : status.StepsCompleted;

    private static EvalRecord Scored(JobStatus final, EvaluationResult result) =>
        new(FinalWeightsStep(final), final.Spec!.Schedule().EpochOf(Math.Max(1, FinalWeightsStep(final))), HeldOutEvaluation.TestSplit, result.Samples, result.Loss, result.Accuracy);

    private async Task<int> Submit(ParseResult r, CancellationToken cancellation)
    {
        var arguments = CliOptions.JobArguments(r);
        if (arguments.InitModelNote() is { } note) error.WriteLine($"trainer: note: {note}");
        if (arguments.UnusedOptionsNote() is { } unused) error.WriteLine($"trainer: note: {unused}");
        using var prepared = arguments.SiloDataCheck() is null ? arguments.Prepare() : null;
        RequireGateway(r, "submit");
        await using var cluster = await Connect(r, cancellation);
        var jobId = NewJobId();
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(jobId);
        var submission = prepared?.Submission ?? await OnSilosAsync(arguments, job, cancellation);
        if (JobLine.MicroShardsNote(submission.Spec) is { } shards) error.WriteLine($"trainer: note: {shards}");
        await SubmitAsync(job, submission, arguments, prepared, cancellation);
        bool json = r.GetValue(CliOptions.Json);
        output.WriteLine(json ? $"{{\"event\":\"submitted\",\"job\":\"{jobId}\"}}" : jobId);
        // NOTE: the id alone on stdout (`id=$(trainer submit ...)`); the hints go to stderr.
        if (!json)
        {
            error.WriteLine($"follow it: trainer watch {jobId} --gateway {Gateway(r)}");
            error.WriteLine($"stop it:   trainer cancel {jobId} --gateway {Gateway(r)}");
        }
        return ExitCodes.Success;
    }

    private async Task<int> Watch(ParseResult r, CancellationToken cancellation)
    {
        RequireGateway(r, "watch");
        var progress = Progress(r, live: true);
        await using var cluster = await Connect(r, cancellation);
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(r.GetValue(CliOptions.JobId)!);
        var status = await RequireJob(job, cancellation);
        var watcher = new JobWatcher(output, error, r.GetValue(CliOptions.Json));
        var final = await watcher.WatchAsync(job, r.GetValue(CliOptions.FromStart) ? 1 : status.StepsCompleted + 1, progress, cancellation);
        watcher.WriteOutcome(final, FinalEval(final));
        return ExitCodes.For(final.State);
    }

    private async Task<int> Status(ParseResult r, CancellationToken cancellation)
    {
        RequireGateway(r, "status");
        await using var cluster = await Connect(r, cancellation);
        var asked = System.Diagnostics.Stopwatch.StartNew();
        var status = await RequireJob(cluster.Client.GetGrain<ITrainingJobGrain>(r.GetValue(CliOptions.JobId)!), cancellation);
        if (r.GetValue(CliOptions.Verbose)) error.WriteLine($"trainer: the job answered in {asked.ElapsedMilliseconds} ms");
        WriteStatus(status, r.GetValue(CliOptions.Json));
        return ExitCodes.Success;
    }

    private async Task<int> List(ParseResult r, CancellationToken cancellation)
    {
        RequireGateway(r, "list");
        await using var cluster = await Connect(r, cancellation);
        var ids = await _retry.RunAsync(cluster.Client.GetGrain<IJobRegistryGrain>(0).ListAsync, cancellation);
        var statuses = await _retry.RunAsync(() => Task.WhenAll(ids.Select(id => cluster.Client.GetGrain<ITrainingJobGrain>(id).GetStatusAsync())), cancellation);
        foreach (var status in statuses) WriteStatus(status, r.GetValue(CliOptions.Json));
        // On stderr: stdout stays one line per job (none), as scripts read it.
        if (statuses.Length == 0 && !r.GetValue(CliOptions.Json)) error.WriteLine("trainer: no jobs on this cluster yet");
        return ExitCodes.Success;
    }

    private async Task<int> Cancel(ParseResult r, CancellationToken cancellation)
    {
        RequireGateway(r, "cancel");
        bool json = r.GetValue(CliOptions.Json);
        await using var cluster = await Connect(r, cancellation);
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(r.GetValue(CliOptions.JobId)!);
        var status = await RequireJob(job, cancellation);
        if (status.IsTerminal)
        {
            if (json) WriteStatus(status, json);
            else output.WriteLine($"{status.JobId} had already ended: {Ended(status)}");
            return ExitCodes.Success;
        }
        var final = await WaitForEndAsync(job, await _retry.RunAsync(job.CancelAsync, cancellation), cancellation);
        if (json) WriteStatus(final, json);
        else if (final.IsTerminal) output.WriteLine($"{final.JobId} {Ended(final)}");
        else error.WriteLine($"trainer: {final.JobId} was asked to stop but is still {final.State.ToString().ToLowerInvariant()} at step {final.StepsCompleted} after {CancelWait.TotalSeconds:0} s; see `trainer status {final.JobId}`");
        return final.IsTerminal ? ExitCodes.Success : ExitCodes.Error;
    }

    /// <summary>How long `cancel` waits for the job to stop: a step in flight finishes first.</summary>
    private static readonly TimeSpan CancelWait = TimeSpan.FromSeconds(30);

    private async Task<JobStatus> WaitForEndAsync(ITrainingJobGrain job, JobStatus status, CancellationToken cancellation)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!status.IsTerminal && waited.Elapsed < CancelWait)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellation);
            status = await _retry.RunAsync(job.GetStatusAsync, cancellation);
        }
        return status;
    }

    private static string Ended(JobStatus s) => $"{s.State.ToString().ToLowerInvariant()} after step {s.StepsCompleted}";

    private async Task<int> Result(ParseResult r, CancellationToken cancellation)
    {
        RequireGateway(r, "result");
        // Checked before connecting; the folder is made only for a job that has a result.
        var saveFolder = r.GetValue(CliOptions.Save) is { } save ? NpyFiles.Folder("save", save) : null;
        bool json = r.GetValue(CliOptions.Json);
        await using var cluster = await Connect(r, cancellation);
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(r.GetValue(CliOptions.JobId)!);
        var status = await RequireJob(job, cancellation);
        // A running job has no result yet: its "final" loss and weights would be a moment's, saved as if they were the job's.
        if (!status.IsTerminal)
            throw new SpecException("job", status.JobId,
                $"allowed: a finished job; it is still running (step {status.StepsCompleted} of {status.Spec?.Steps}): `trainer watch {status.JobId}` follows it to its end, `trainer status {status.JobId}` shows where it is");
        if (saveFolder is not null) NpyFiles.PrepareSaveFolder(saveFolder);
        new JobWatcher(output, error, json).WriteOutcome(status, FinalEval(status));
        if (saveFolder is not null) await SaveAsync(job, status, saveFolder, json, cancellation);
        return ExitCodes.For(status.State);
    }

    private async Task SaveAsync(ITrainingJobGrain job, JobStatus status, string folder, bool json, CancellationToken cancellation)
    {
        var parameters = await _retry.RunAsync(() => job.ReadParametersAsync(ClusterConnection.ChunkBytes), cancellation);
        var removed = NpyFiles.SaveParameters(folder, status.Spec!.Model, parameters.Values);
        WeightsManifest.Of(status.Spec, status.JobId, WeightsStep(status)).Write(folder);
        if (!json) output.WriteLine($"saved weights to {folder}" + (removed.Length == 0 ? "" : $" (removed {string.Join(", ", removed)}, an earlier model's)"));
    }

    /// <summary>The step whose weights a finished job holds (with early stopping its best); null when that is not known, as for a job still running.</summary>
    private static int? WeightsStep(JobStatus s) => s.State != JobState.Completed ? null
        : s.Stopping is { BestStep: > 0 } best ? best.BestStep : s.StepsCompleted;

    private void WriteStatus(JobStatus s, bool json)
    {
        // A mini-batch job's latest step is in an epoch: which, of how many.
        var schedule = s.Spec is { MiniBatches: true } spec ? spec.Schedule() : null;
        int? epoch = schedule is not null && s.StepsCompleted > 0 ? schedule.EpochOf(s.StepsCompleted) : null;
        int? epochs = schedule?.EpochsIn(s.Spec!.Steps);
        if (json)
        {
            output.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
            {
                @event = "status", job = s.JobId, state = s.State.ToString().ToLowerInvariant(),
                steps = s.StepsCompleted, total_steps = s.Spec?.Steps, epoch, epochs, checkpoint_step = s.CheckpointStep,
                last_loss = double.IsFinite(s.LastLoss) ? s.LastLoss : (double?)null,
                seconds = s.TrainingSeconds, message = s.Message, model = s.Spec?.Model.ToString(), gemm = s.Spec?.Gemm,
            }));
            return;
        }
        output.WriteLine($"{s.JobId}  {s.State.ToString().ToLowerInvariant(),-9}  step {s.StepsCompleted}/{s.Spec?.Steps}"
            + (epoch is not null ? $"  epoch {epoch}/{epochs}" : "")
            + (s.StepsCompleted == 0 ? "  no loss yet" : $"  loss {s.LastLoss.ToString("G8", CultureInfo.InvariantCulture)}") + $"  {s.Spec?.Model}, {s.Spec?.Workers} workers"
            + (s.State == JobState.Running ? $"  checkpoint at step {s.CheckpointStep}" : "")
            + (s.Message is { } m ? $"  ({m})" : ""));
    }

    private async Task<JobStatus> RequireJob(ITrainingJobGrain job, CancellationToken cancellation)
    {
        var status = await _retry.RunAsync(job.GetStatusAsync, cancellation);
        if (status.State == JobState.Unknown) throw UnknownJob(status.JobId);
        return status;
    }

    public static SpecException UnknownJob(string jobId) =>
        new("job", jobId, "it must be the id of a job submitted to this cluster (see `trainer list`)");

    /// <param name="live">A job already running (`watch`): plain lines also show the latest step once a second.</param>
    private IProgressReporter Progress(ParseResult r, bool live = false) =>
        ProgressReporters.For(ProgressReporters.ParseMode(r.GetValue(CliOptions.Progress)!), r.GetValue(CliOptions.Json), output, outputIsTerminal, live);

    private static void RequireGateway(ParseResult r, string command)
    {
        if (Gateway(r) is null)
            throw new SpecException("gateway", null,
                $"`trainer {command}` talks to a running cluster: pass --gateway host:port or set TRAINER_GATEWAY (start a local cluster with {CliOptions.StartACluster}; its gateways are 127.0.0.1:30000 and up)");
    }

    private static string? PrepareSave(ParseResult r)
    {
        if (r.GetValue(CliOptions.Save) is not { } save) return null;
        var folder = NpyFiles.Folder("save", save);
        NpyFiles.PrepareSaveFolder(folder);
        return folder;
    }

    /// <param name="files">The embedded silo's data files, already open (<see cref="InPlaceData"/>); null: its own.</param>
    private async Task<ClusterConnection> Connect(ParseResult r, CancellationToken cancellation, int? dashboardPort = null, StoredFiles? files = null)
    {
        bool verbose = r.GetValue(CliOptions.Verbose);
        if (verbose) error.WriteLine($"trainer: GEMM backend {Blas.Describe(Blas.Default)}");
        var connecting = System.Diagnostics.Stopwatch.StartNew();
        var gateway = Gateway(r);
        // Only a running cluster's gateways speak TLS; the embedded silo has no one else to talk to.
        var certificate = gateway is null ? null : ClusterCertificate(r);
        var connection = await ClusterConnection.OpenAsync(gateway, r.GetValue(CliOptions.ClusterId)!, r.GetValue(CliOptions.ServiceId)!, verbose, cancellation, dashboardPort, certificate, files);
        // The client's own start-up (mostly compiling Orleans' client code) is most of a short command's time: say how
        // much, and how many methods were compiled at run time (the count tells how much of it was compiling).
        if (verbose) error.WriteLine($"trainer: {StartUp(connection.Description, connecting.ElapsedMilliseconds)}");
        return connection;
    }

    /// <summary>Whether this process runs with tiered compilation (Trainer.Runtime.props; DOTNET_TieredCompilation overrides it).</summary>
    private static bool TieredCompilation =>
        Environment.GetEnvironmentVariable("DOTNET_TieredCompilation") is { } value ? value.Trim() != "0" : AppContext.GetData("System.Runtime.TieredCompilation") is not (false or "false" or "False");

    private static string StartUp(string connection, long connectMs)
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return $"connected to the {connection} in {connectMs} ms ({(DateTime.Now - self.StartTime).TotalMilliseconds:F0} ms since this process started, "
            + $"{self.TotalProcessorTime.TotalMilliseconds:F0} ms of CPU, {System.Runtime.JitInfo.GetCompiledMethodCount()} methods compiled at run time, "
            + $"tiered compilation {(TieredCompilation ? "on" : "off")})";
    }

    /// <summary>The cluster's certificate from --tls-cert, --tls-key and --tls-password (or their TRAINER_TLS_* variables), checked; null: no TLS.</summary>
    private static Grains.ClusterCertificate? ClusterCertificate(ParseResult r) => new Hosting.ClusterCertificateFiles(
        r.GetValue(CliOptions.TlsCert) ?? Variable("TRAINER_TLS_CERT"), r.GetValue(CliOptions.TlsKey) ?? Variable("TRAINER_TLS_KEY"), r.GetValue(CliOptions.TlsPassword),
        new("tls-cert", "tls-key", "tls-password")).Load();

    private static string? Variable(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    /// <summary>--gateway, else the TRAINER_GATEWAY environment variable, else null (embedded).</summary>
    private static string? Gateway(ParseResult r) =>
        r.GetValue<string?>("--gateway") ?? Variable("TRAINER_GATEWAY");

    /// <summary>The backend of the kernel <paramref name="spec"/>'s job ran on, where this process runs it; else this process's own.</summary>
    private static IBlas JobKernel(TrainingSpec spec) => spec.Gemm is { } kernel && Blas.Kernels.Contains(kernel) ? Blas.For(kernel) : Blas.Default;

    private static string NewJobId() => "job-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Bad input becomes one clear line on stderr and exit code 2; nothing was started.</summary>
    private async Task<int> Guarded(ParseResult r, CancellationToken cancellation, Func<ParseResult, CancellationToken, Task<int>> handler)
    {
        bool json = r.GetValue(CliOptions.Json);
        try
        {
            return await handler(r, cancellation);
        }
        catch (SpecException e)
        {
            return Fail(ExitCodes.BadInput, e.Field, e.Message, json);
        }
        catch (JobRejectedException e)
        {
            return Fail(ExitCodes.BadInput, e.Field, e.Message, json);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            return Fail(ExitCodes.Interrupted, null, "interrupted", json);
        }
        catch (Exception e)
        {
            return Fail(ExitCodes.Error, null, $"{e.GetType().Name}: {e.Message}", json);
        }
    }

    private int Fail(int code, string? field, string message, bool json)
    {
        error.WriteLine($"trainer: error: {message}");
        if (json)
            output.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { @event = "error", field, message }));
        return code;
    }
}
