using Microsoft.Extensions.DependencyInjection;
using Trainer.Abstractions;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A job whose data the silos read themselves (--data-on-silos) trains on the rows an upload would have
/// sent, to the bit: gzipped IDX (decompressed once per silo), plain IDX and a float32 .npy (both mapped),
/// in float64 and float32, on 1, 2 and 3 workers of a 3-silo cluster, with a validation split and a test
/// set (t10k files, or --test) scored by the parameter server from its own silo's files; refusals name the
/// file and the silo; and a worker whose silo dies re-opens the files where it is re-activated.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DataOnSilosTests(ClusterFixture fixture)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    // npy data has no test set of its own: the fixture's training images are one (--test), read on the silos too.
    private static string[] Options(string data, string precision, int workers) =>
        ["--data", data, .. data.StartsWith("npy:") ? new[] { "--test", $"idx:{DataOnSilosFiles.GzippedIdx}" } : [], "--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce", "--optimizer", "adam", "--lr", "0.003",
         "--batch", "64", "--epochs", "1", "--val-fraction", "0.25", "--precision", precision, "--workers", $"{workers}", "--micro-shards", "3"];

    [Theory]
    [InlineData("idx-gz", "float64")]
    [InlineData("idx", "float32")]
    [InlineData("npy-float32", "float32")]
    [InlineData("npy-float32", "float64")]
    public async Task DataReadOnTheSilos_GivesTheUploadedJobsLossesEvaluationsAndWeights_OnOneTwoAndThreeWorkers(string format, string precision)
    {
        string data = format switch
        {
            "idx-gz" => $"idx:{DataOnSilosFiles.GzippedIdx}",
            "idx" => $"idx:{DataOnSilosFiles.PlainIdx()}",
            _ => $"npy:{DataOnSilosFiles.Float32Npy()}",
        };
        var uploaded = await RunAsync(Options(data, precision, workers: 2));
        Assert.NotNull(uploaded.Submission.Data);
        Assert.Equal(6, uploaded.Losses.Length);   // 384 of the 512 rows train: 6 batches of 64
        foreach (int workers in new[] { 1, 2, 3 })
        {
            var onSilos = await RunAsync([.. Options(data, precision, workers), "--data-on-silos"]);
            Assert.Null(onSilos.Submission.Data);
            Assert.Equal(uploaded.Submission.Spec with { Workers = workers }, onSilos.Submission.Spec);
            Assert.Equal(uploaded.Losses, onSilos.Losses);
            Assert.Equal(uploaded.Evals, onSilos.Evals);
            Assert.Equal(uploaded.Weights, onSilos.Weights);
        }
    }

    [Theory]
    [InlineData("data", 3)]
    [InlineData("split", 2)]
    public async Task FullBatchJobs_DataParallelOrSplit_OnTheSilos_GiveTheUploadedJobsWeights(string parallel, int workers)
    {
        // Without mini-batches each worker copies its rows (or a split worker the batch) once from the files.
        string[] options = ["--data", $"npy:{DataOnSilosFiles.Float32Npy()}", "--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce",
            "--optimizer", "adam", "--lr", "0.003", "--steps", "4", "--parallel", parallel, "--workers", $"{workers}"];
        var weights = new List<double[]>();
        foreach (var run in new[] { options, [.. options, "--data-on-silos"] })
        {
            var (id, status, _) = await Jobs.RunAsync(fixture.Client, await DataOnSilosFiles.SubmissionAsync(fixture.Client, run), Token);
            Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
            weights.Add((await fixture.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync()).ToArray());
        }
        Assert.Equal(weights[0], weights[1]);
    }

    private async Task<(JobSubmission Submission, double[] Losses, EvalRecord[] Evals, double[] Weights)> RunAsync(string[] options)
    {
        var submission = await DataOnSilosFiles.SubmissionAsync(fixture.Client, options);
        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, submission, Token);
        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(id);
        var evals = (await job.GetLossesAsync(1, losses.Length, TimeSpan.Zero)).Evals ?? [];
        Assert.Equal(["val", "test"], evals.Select(e => e.Split));
        return (submission, losses, evals, (await job.ReadParametersAsync()).ToArray());
    }

    [Fact]
    public async Task FilesACheckRefuses_AreRefusedOnTheSilo_NamingTheFileRowColumnAndSilo()
    {
        var model = new Trainer.Core.Models.ModelSpec([784, 32, 10], Trainer.Core.Models.Activation.Relu, Trainer.Core.Models.LossKind.CrossEntropy);
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());

        var nan = DataOnSilosFiles.Float32Npy(edit: x => x[3 * 784 + 17] = float.NaN);
        var refused = await Assert.ThrowsAsync<JobRejectedException>(() => job.InspectDataAsync(new SiloData($"npy:{nan}", null, null), model));
        Assert.Equal("data", refused.Field);
        Assert.Matches($@"{Path.Combine(nan, "x.npy")}: row 3, column 17 \(counting from 0\) is NaN; every value must be a finite number \(read on silo 127\.0\.0\.1:\d+\)", refused.Message);

        var label = DataOnSilosFiles.Float32Npy(labels: y => [.. y.Select((v, r) => r == 5 ? 10 : v)]);
        refused = await Assert.ThrowsAsync<JobRejectedException>(() => job.InspectDataAsync(new SiloData($"npy:{label}", null, null), model));
        Assert.Contains($"{Path.Combine(label, "y.npy")}: row 5 (counting from 0) has label 10; allowed: a class from 0 to 9", refused.Message);

        var trailing = DataOnSilosFiles.Float32Npy();
        File.AppendAllText(Path.Combine(trailing, "x.npy"), "junk");
        refused = await Assert.ThrowsAsync<JobRejectedException>(() => job.InspectDataAsync(new SiloData($"npy:{trailing}", null, null), model));
        Assert.Contains("the file has trailing bytes", refused.Message);

        var shorter = DataOnSilosFiles.Float32Npy(labels: y => y[..500]);
        refused = await Assert.ThrowsAsync<JobRejectedException>(() => job.InspectDataAsync(new SiloData($"npy:{shorter}", null, null), model));
        Assert.Matches(@"x\.npy has 512 samples \(rows\) but y\.npy has 500; they must match on silo 127\.0\.0\.1:\d+", refused.Message);

        // Nothing of the job was started: it is unknown to the cluster.
        Assert.Equal(JobState.Unknown, (await job.GetStatusAsync()).State);
    }

    [Fact]
    public async Task AMissingOrRelativePath_IsRefusedNamingTheSiloAndThePath_AndTheClusterKeepsServing()
    {
        var model = new Trainer.Core.Models.ModelSpec([784, 32, 10], Trainer.Core.Models.Activation.Relu, Trainer.Core.Models.LossKind.CrossEntropy);
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());
        string missing = Path.Combine(Cli.TempFolder(), "gone");

        var refused = await Assert.ThrowsAsync<JobRejectedException>(() => job.InspectDataAsync(new SiloData($"idx:{missing}", null, null), model));
        Assert.Matches($@"data: 'idx:{missing}' is not allowed; the folder does not exist on silo 127\.0\.0\.1:\d+", refused.Message);
        refused = await Assert.ThrowsAsync<JobRejectedException>(() => job.InspectDataAsync(new SiloData($"npy:{missing}", null, null), model));
        Assert.Matches($@"{Path.Combine(missing, "x.npy")} does not exist on silo 127\.0\.0\.1:\d+", refused.Message);
        refused = await Assert.ThrowsAsync<JobRejectedException>(() => job.InspectDataAsync(new SiloData($"idx:{DataOnSilosFiles.GzippedIdx}", "npy:relative/test", null), model));
        Assert.Equal("test", refused.Field);
        Assert.Contains("must be an absolute path", refused.Message);

        // The CLI refuses a relative path before it connects, naming the field.
        var (code, _, err) = await Cli.RunAsync(["train", "--data", "idx:tests/fixtures/fashion-mnist-small", "--data-on-silos", "--model", "784-32-10", "--loss", "ce"]);
        Assert.Equal(2, code);
        Assert.StartsWith("trainer: error: data: 'idx:tests/fixtures/fashion-mnist-small' is not allowed; with --data-on-silos the folder must be an absolute path", err);

        // The cluster goes on: a job on the fixture runs.
        var submission = await DataOnSilosFiles.SubmissionAsync(fixture.Client, [.. Options($"idx:{DataOnSilosFiles.GzippedIdx}", "float64", 2), "--data-on-silos"]);
        Assert.Equal(JobState.Completed, (await Jobs.RunAsync(fixture.Client, submission, Token)).Status.State);
    }

    [Fact]
    public async Task ASiloWithDataRoots_ReadsDataOnlyUnderThem()
    {
        string root = Path.GetDirectoryName(DataOnSilosFiles.PlainIdx())!, inside = DataOnSilosFiles.PlainIdx();
        await using var cluster = await FailoverTests.StartAsync(redis: null, configureSilo: silo => silo.Services.Configure<TrainerOptions>(o => o.DataRoots = [inside]));
        var job = cluster.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());
        var model = new Trainer.Core.Models.ModelSpec([784, 32, 10], Trainer.Core.Models.Activation.Relu, Trainer.Core.Models.LossKind.CrossEntropy);

        Assert.Equal(512, (await job.InspectDataAsync(new SiloData($"idx:{inside}", null, null), model)).Samples);
        foreach (var outside in new[] { $"idx:{DataOnSilosFiles.GzippedIdx}", $"idx:{inside}/../{Path.GetFileName(DataOnSilosFiles.PlainIdx())}" })
        {
            var refused = await Assert.ThrowsAsync<JobRejectedException>(() => job.InspectDataAsync(new SiloData(outside, null, null), model));
            Assert.Matches($@"data: '{System.Text.RegularExpressions.Regex.Escape(outside)}' is not allowed; data is read only under {System.Text.RegularExpressions.Regex.Escape(inside)} \(Trainer:DataRoots\) on silo 127\.0\.0\.1:\d+", refused.Message);
        }
        Assert.StartsWith(root, inside);
    }

    [Fact]
    public async Task FilesGoneWhenTheWorkersOpenThem_FailTheJobAtItsStart_NamingTheSiloAndThePath()
    {
        var gate = CallGate.FromStep(1);
        await using var cluster = await FailoverTests.StartAsync(redis: null, configureSilo: silo => silo.AddOutgoingGrainCallFilter(gate.FilterAsync));
        string folder = DataOnSilosFiles.PlainIdx();
        var submission = await DataOnSilosFiles.SubmissionAsync(cluster.Client, [.. Options($"idx:{folder}", "float64", 3), "--data-on-silos"]);

        // Once the job was checked and started, before its workers open the files.
        var (_, status, _) = await Jobs.RunAsync(cluster.Client, submission, Token, afterSubmit: (_, _) => gate.WhileHeldAsync(() =>
        {
            File.Delete(Path.Combine(folder, "train-images-idx3-ubyte"));
            return Task.CompletedTask;
        }, Token));

        Assert.Equal(JobState.Failed, status.State);
        Assert.Matches($@"failed in the steps from 1: InvalidDataException: data: 'idx:{folder}' is not allowed; {Path.Combine(folder, "train-images-idx3-ubyte")}\[\.gz\] does not exist on silo 127\.0\.0\.1:\d+", status.Message);
    }

    // A worker's silo: the worker is re-activated on a survivor and opens the files there (or, uploaded,
    // fetches the job's rows there). The job's silo (job grain and parameter server; Redis keeps the job's
    // record): the job resumes from its checkpoint, which holds the paths and no data, and its new parameter
    // server and workers open the files; uploaded, the new job grain hands the dataset grain the rows its
    // record keeps, still the bytes the client sent, and they are read as before. Either way the killed job
    // ends with the bits of the same job run the other way, undisturbed.
    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public async Task KillingASilo_MidJob_TheGrainsFindTheDataAgain_AndTheJobEndsWithTheUndisturbedJobsWeights(bool killTheJobsSilo, bool onSilos)
    {
        await using var redis = killTheJobsSilo ? await RedisServer.StartAsync() : null;
        // Set for the second job only: it is held before its batch from step 61 (a batch never crosses a checkpoint step).
        CallGate? armed = null;
        await using var cluster = await FailoverTests.StartAsync(redis?.Endpoint,
            configureSilo: silo => silo.AddOutgoingGrainCallFilter(context => armed is { } held ? held.FilterAsync(context) : context.Invoke()));
        string[] uploaded = ["--data", $"idx:{DataOnSilosFiles.PlainIdx()}", "--model", "784-32-10", "--activation", "relu", "--bias", "--loss", "ce",
            "--optimizer", "adam", "--lr", "0.003", "--batch", "32", "--epochs", "12", "--val-fraction", "0.25", "--workers", "3",
            "--checkpoint-every", "20", "--checkpoint-min-seconds", "0"];
        string[] readOnSilos = [.. uploaded, "--data-on-silos"];
        var undisturbed = await Jobs.RunAsync(cluster.Client, await DataOnSilosFiles.SubmissionAsync(cluster.Client, onSilos ? uploaded : readOnSilos), Token);
        var expected = (await cluster.Client.GetGrain<ITrainingJobGrain>(undisturbed.Id).ReadParametersAsync()).ToArray();

        var gate = armed = CallGate.AtBatch(61);
        var killed = await DataOnSilosFiles.SubmissionAsync(cluster.Client, onSilos ? readOnSilos : uploaded);
        Assert.Equal(onSilos, killed.Data is null);
        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, killed, Token,
            afterSubmit: (job, jobId) => FailoverTests.KillAtGateAsync(cluster, gate, job, jobId, killTheJobsSilo));

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(undisturbed.Losses, losses);
        Assert.Equal(expected, (await cluster.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync()).ToArray());
    }
}
