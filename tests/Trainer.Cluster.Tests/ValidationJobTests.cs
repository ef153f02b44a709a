using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A job with a validation set scores it, then its test set, after every epoch and its last step, as
/// the single-process run's weights score (bit for bit), and never trains on it. With early stopping
/// it stops at the step the single-process validation losses say and keeps the best step's weights;
/// a job that loses its parameter server, or its own silo, after the best step restores both the best
/// weights and the count of evaluations since from its checkpoint, and stops at the same step with the same bits.
/// </summary>
public sealed class ValidationJobTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>12 training rows (a third mislabelled) in batches of 4, 12 validation and 9 test rows: the validation loss is lowest after epoch 8, then rises.</summary>
    private static TrainingSpec Overfit(int patience) => new()
    {
        Model = new ModelSpec([20, 32, 3], Activation.Relu, LossKind.CrossEntropy, bias: true),
        LearningRate = 0.003,
        Batch = 4,
        Samples = 12,
        ValidationSamples = 12,
        TestSamples = 9,
        EarlyStopping = patience,
        Steps = 120,
        Workers = 2,
        Seed = 3,
        Init = InitKind.He,
        Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam },
    };

    private static Core.Data.Dataset Rows(TrainingSpec spec) =>
        Overfitting.Rows(spec.Model.InputSize, spec.Model.OutputSize, spec.Samples, spec.ValidationSamples, spec.TestSamples, seed: 5);

    [Theory]
    [InlineData(OptimizerKind.Sgd)]
    [InlineData(OptimizerKind.Adam)]
    public async Task TheValidationAndTestSets_AreScoredAfterEveryEpochAndTheLastStep_AsTheSingleProcessWeightsScore(OptimizerKind optimizer)
    {
        await using var cluster = await ParameterServerStepTests.StartAsync(1, new LogCapture(LogLevel.Warning));
        // 2.5 epochs of 3 steps (the last cut short) and every 4 steps: evaluations after steps 3, 4, 6, 8 and 9... to 10.
        var spec = Overfit(patience: 0) with { Steps = 10, EvalEvery = 4, Optimizer = new OptimizerSpec { Kind = optimizer }, CheckpointEvery = 3, CheckpointMinSeconds = 0 };
        var rows = Rows(spec);
        var expected = Overfitting.Reference(spec, rows);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Overfitting.Submission(spec, rows), Token);

        // Trained on the 12 training rows alone: the single-process run on them has the same losses and weights.
        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, (expected.Losses, expected.Final));
        var evals = (await cluster.Client.GetGrain<ITrainingJobGrain>(id).GetLossesAsync(1, spec.Steps, TimeSpan.Zero)).Evals!;
        Assert.Equal([3, 3, 4, 4, 6, 6, 8, 8, 9, 9, 10, 10], evals.Select(e => e.Step));
        Assert.Equal(expected.Evals, evals);
        Assert.Equal(expected.Evals[^1], status.LastEval);
        Assert.Null(status.Stopping);
    }

    [Fact]
    public async Task EarlyStopping_StopsWhereTheSingleProcessValidationLossesSay_AndKeepsTheBestStepsWeights()
    {
        await using var cluster = await ParameterServerStepTests.StartAsync(1, new LogCapture(LogLevel.Warning));
        var spec = Overfit(patience: 3);
        var rows = Rows(spec);
        var expected = Overfitting.Reference(spec, rows);
        var stopping = expected.Stopping!;
        int stoppedAt = expected.Losses.Length;
        // The case must stop early, and not at its first evaluations, to show anything.
        Assert.True(stopping.Stopped && stoppedAt < spec.Steps && stopping.BestStep > 3, $"best step {stopping.BestStep}, stopped after {stoppedAt}");

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Overfitting.Submission(spec, rows), Token);

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, (expected.Losses, expected.Final));
        Assert.Equal(stoppedAt, status.StepsCompleted);
        Assert.Equal(stopping, status.Stopping);
        Assert.Equal($"stopped early after step {stoppedAt}: 3 evaluations in a row did not lower the validation loss of step {stopping.BestStep}, whose weights the job keeps", status.Message);
        var evals = (await cluster.Client.GetGrain<ITrainingJobGrain>(id).GetLossesAsync(1, spec.Steps, TimeSpan.Zero)).Evals!;
        Assert.Equal(expected.Evals, evals);
        // The test score of the job's final weights: the best step's.
        Assert.Equal(expected.Evals.Single(e => e.Split == "test" && e.Step == stopping.BestStep), status.LastEval);

        // The dashboard's JSON for the job lists both sets' evaluations and the best step.
        var answer = await new Trainer.Dashboard.DashboardApi(cluster.Client, new TestSiloDetails(), new NoSiloMetadata()).JobAsync(id, null);
        var detail = System.Text.Json.JsonSerializer.SerializeToElement(((Microsoft.AspNetCore.Http.IValueHttpResult)answer).Value, Trainer.Dashboard.DashboardJson.Options);
        Assert.Equal(expected.Evals.Select(e => (e.Step, e.Split, e.Loss)),
            detail.GetProperty("evals").EnumerateArray().Select(e => (e.GetProperty("step").GetInt32(), e.GetProperty("split").GetString()!, e.GetProperty("loss").GetDouble())));
        Assert.Equal((stopping.BestStep, true), (detail.GetProperty("status").GetProperty("best_step").GetInt32(), detail.GetProperty("status").GetProperty("stopped_early").GetBoolean()));
        Assert.Equal((12, 3), (detail.GetProperty("spec").GetProperty("validation_samples").GetInt32(), detail.GetProperty("spec").GetProperty("early_stopping").GetInt32()));

        // It kept its best step's weights, not a state after its last step: nothing to resume.
        var resume = Overfitting.Submission(spec with { Steps = spec.Steps + 10 }, rows) with { ResumeFrom = id };
        var refused = await Assert.ThrowsAsync<JobRejectedException>(() => cluster.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId()).SubmitAsync(resume));
        Assert.StartsWith($"resume: job {id} ran with --early-stopping 3: it kept its best step's weights", refused.Message);
    }

    [Fact]
    public async Task AJobThatLosesItsParameterServerAfterItsBestStep_RestoresTheBestWeightsAndTheCount_AndStopsAsAnUndisturbedJob()
    {
        var spec = Overfit(patience: 3) with { CheckpointEvery = 1, CheckpointMinSeconds = 0 };
        var rows = Rows(spec);
        var expected = Overfitting.Reference(spec, rows);
        int stoppedAt = expected.Losses.Length;
        // Held before the step before the last: the checkpoint then is after the best step, with evaluations since it.
        var gate = CallGate.AtBatch(stoppedAt - 1);
        Assert.True(expected.Stopping!.BestStep < stoppedAt - 4, $"best step {expected.Stopping.BestStep}, stopped after {stoppedAt}");
        var log = new LogCapture();
        await using var cluster = await ParameterServerStepTests.StartAsync(2, log, configureSilo: silo => silo.AddOutgoingGrainCallFilter(gate.FilterAsync));

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Overfitting.Submission(spec, rows), Token, afterSubmit: (_, jobId) =>
            // Between two steps the parameter server's activation goes, as with its silo: the job must restore its checkpoint.
            gate.WhileHeldAsync(() => cluster.Client.GetGrain<IParameterServerGrain>(jobId).ReleaseAsync(), Token));

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, (expected.Losses, expected.Final));
        Assert.Equal(expected.Stopping, status.Stopping);
        Assert.Contains(log.Lines, l => l.StartsWith($"Job {id}: ", StringComparison.Ordinal) && l.Contains("restoring the checkpoint"));
    }

    [Fact]
    public async Task KillingTheJobsSilo_AfterTheBestStep_RestoresTheStoredBestWeightsAndCount_AndTheJobStopsAsAnUndisturbedOne()
    {
        await using var redis = await RedisServer.StartAsync();
        // 9,603 parameters (75 KB) against 64 KB chunks: the checkpoint's best weights go to storage in chunks.
        var spec = Overfit(patience: 3) with
        {
            Model = new ModelSpec([20, 400, 3], Activation.Tanh, LossKind.CrossEntropy, bias: true), LearningRate = 3e-4, CheckpointEvery = 1, CheckpointMinSeconds = 0,
        };
        var rows = Rows(spec);
        var expected = Overfitting.Reference(spec, rows);
        int stoppedAt = expected.Losses.Length;
        // The job grain's record holds a checkpoint one or two steps before the gate (the latest write may still be running): after the best step.
        var gate = CallGate.AtBatch(stoppedAt - 1);
        Assert.True(expected.Stopping!.Stopped && expected.Stopping.BestStep > 3 && expected.Stopping.BestStep < stoppedAt - 4, $"best step {expected.Stopping.BestStep}, stopped after {stoppedAt}");
        await using var cluster = await FailoverTests.StartAsync(redis.Endpoint, messageLimit: ChunkedTransferTests.Limit, configureSilo: silo => silo.AddOutgoingGrainCallFilter(gate.FilterAsync));
        var submission = Overfitting.Submission(spec, rows);

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, submission, Token,
            afterSubmit: (job, _) => gate.WhileHeldAsync(async () =>
            {
#pragma warning disable xUnit1051 // the management grain's lookup takes no cancellation token
                var silo = await cluster.Client.GetGrain<IManagementGrain>(0).GetActivationAddress(job);
#pragma warning restore xUnit1051
                await cluster.KillSiloAsync(cluster.Silos.Single(s => s.SiloAddress.Equals(silo)));
            }, Token),
            submit: job => job.UploadAndSubmitAsync(submission, WireLimits.ChunkBytesFor(ChunkedTransferTests.Limit)));

        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(expected.Losses, losses);
        Assert.Equal(expected.Stopping, status.Stopping);
        Assert.Equal(expected.Final, (await cluster.Client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync(WireLimits.ChunkBytesFor(ChunkedTransferTests.Limit))).ToArray());
    }
}
