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

    public static string NewId() => "test-" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>Submits and waits until the job ends; returns its id, final status and every loss.</summary>
    public static async Task<(string Id, JobStatus Status, double[] Losses)> RunAsync(IClusterClient client, JobSubmission submission, CancellationToken cancellation)
    {
        var id = NewId();
        var job = client.GetGrain<ITrainingJobGrain>(id);
        await job.SubmitAsync(submission);
        var losses = new List<double>();
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            var batch = await job.GetLossesAsync(losses.Count + 1, 100_000, TimeSpan.FromSeconds(5));
            losses.AddRange(batch.Losses.Values.ToArray());
            if (batch.Status.IsTerminal && losses.Count >= batch.Status.StepsCompleted)
                return (id, batch.Status, losses.ToArray());
        }
    }

    public static JobSubmission Synthetic(TrainingSpec spec) => new(spec, null, null, "synthetic", "normal");

    /// <summary>The single-process reference: the same data, initial weights and shard count.</summary>
    public static (double[] Losses, double[] Parameters) Local(TrainingSpec spec, Dataset? data = null, double[]? initial = null)
    {
        data ??= Core.Data.Synthetic.Data(spec.Batch, spec.Model.InputSize, spec.Model.OutputSize, spec.Seed);
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
