using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Cluster.Tests;

/// <summary>Helpers to run a job on a cluster and to compute the same job in one process.</summary>
internal static class Jobs
{
    public static TrainingSpec Small(int workers, int steps = 25, LossKind loss = LossKind.Sse, int batch = 13) => new()
    {
        Model = new ModelSpec([20, 8, 3], Activation.Sigmoid, loss),
        LearningRate = 1e-3,
        Batch = batch,
        Steps = steps,
        Workers = workers,
        Seed = 7,
    };

    /// <summary>
    /// The job completed with exactly <paramref name="expected"/>'s losses and weights (the
    /// single-process run's, <see cref="Local"/>), bit for bit: the losses seen while watching, the
    /// job grain's whole history (which a resumed job grain read back from storage) and the weights.
    /// </summary>
    public static async Task AssertCompletedAsAsync(IClusterClient client, string id, JobStatus status, double[] losses, (double[] Losses, double[] Parameters) expected)
    {
        Assert.True(status.State == JobState.Completed, $"{status.State}: {status.Message}");
        Assert.Equal(expected.Losses, losses);
        Assert.Equal(expected.Losses, (await client.GetGrain<ITrainingJobGrain>(id).GetLossesAsync(1, expected.Losses.Length, TimeSpan.Zero)).Losses.Values.ToArray());
        Assert.Equal(expected.Parameters, (await client.GetGrain<ITrainingJobGrain>(id).ReadParametersAsync()).ToArray());
    }

    public static string NewId() => "test-" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>Submits and waits until the job ends; returns its id, final status and every loss.</summary>
    /// <remarks>
    /// Polls like `trainer watch`: a call that fails while a silo is being declared dead is retried
    /// (bounded), since the job itself carries on in the cluster.
    /// </remarks>
    public static async Task<(string Id, JobStatus Status, double[] Losses)> RunAsync(IClusterClient client, JobSubmission submission, CancellationToken cancellation,
        Func<ITrainingJobGrain, string, Task>? afterSubmit = null, Func<ITrainingJobGrain, Task>? submit = null)
    {
        var id = NewId();
        var job = client.GetGrain<ITrainingJobGrain>(id);
        await (submit?.Invoke(job) ?? job.SubmitAsync(submission));
        var disturbance = afterSubmit?.Invoke(job, id) ?? Task.CompletedTask;
        var losses = new List<double>();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        var giveUp = DateTime.UtcNow + TimeSpan.FromMinutes(5);
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            Assert.True(DateTime.UtcNow < giveUp, $"job {id} did not end within 5 minutes ({losses.Count} losses seen)");
            LossBatch batch;
            try
            {
                batch = await job.GetLossesAsync(losses.Count + 1, 100_000, TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is not OperationCanceledException && DateTime.UtcNow < deadline)
            {
                continue;
            }
            losses.AddRange(batch.Losses.Values.ToArray());
            Assert.True(batch.Status.State != JobState.Unknown, $"job {id} is gone: the cluster no longer knows it ({losses.Count} losses seen)");
            // A resumed job replays from its checkpoint: it reports the same losses again from there.
            if (batch.Status.StepsCompleted < losses.Count) losses.RemoveRange(batch.Status.StepsCompleted, losses.Count - batch.Status.StepsCompleted);
            if (batch.Status.IsTerminal && losses.Count >= batch.Status.StepsCompleted)
            {
                await disturbance;
                return (id, batch.Status, losses.ToArray());
            }
        }
    }

    public static JobSubmission Synthetic(TrainingSpec spec) => new(spec, null, null, "synthetic", "normal");

    /// <summary>A submission that uploads a batch of samples (drawn as the synthetic data are, from <paramref name="seed"/>), and the samples.</summary>
    public static (JobSubmission Submission, Dataset Samples) UploadedSamples(TrainingSpec spec, int seed)
    {
        var samples = Core.Data.Synthetic.Data(spec.Batch, spec.Model.InputSize, spec.Model.OutputSize, seed);
        return (Uploaded(spec, samples), samples);
    }

    /// <summary>A submission that uploads <paramref name="rows"/> (training rows, then held-out ones).</summary>
    public static JobSubmission Uploaded(TrainingSpec spec, Dataset rows) => Synthetic(spec) with
    {
        Data = new DatasetPayload(rows.Count, rows.InputSize, rows.OutputSize, TensorPayload.From(rows.X), TensorPayload.From(rows.Y)),
        DataDescription = "uploaded",
    };

    /// <summary>The single-process reference: the same data, initial weights and shard count.</summary>
    public static (double[] Losses, double[] Parameters) Local(TrainingSpec spec, Dataset? data = null, double[]? initial = null)
    {
        data ??= Core.Data.Synthetic.Data(spec.ResolvedSamples, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed);
        initial ??= Initializer.Create(ParameterLayout.For(spec.Model), spec.Init, spec.Seed);
        var trainer = new LocalTrainer(spec, data, (double[])initial.Clone());
        var losses = new double[spec.Steps];
        for (int i = 0; i < spec.Steps; i++) losses[i] = trainer.Step();
        return (losses, trainer.Parameters);
    }

    public static double MaxRelativeError(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
            worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]) / Math.Max(Math.Abs(expected[i]), 1e-300));
        return worst;
    }
}
