using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A job's uploaded rows are held once per silo, whatever the job's precision (<see cref="SiloUploads"/>): its workers
/// and parameter server on one silo (an embedded job's case) fetch them once and share them, train to
/// the single-process run's bits, and let them go when the job ends; two jobs never share rows, and
/// rows stored again as new arrays are a new version.
/// </summary>
public sealed class SiloUploadsTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(Precision.Float64)]
    [InlineData(Precision.Float32)]
    public async Task AJobsGrainsOnOneSilo_FetchItsUploadedRowsOnce_EndWithTheSingleProcessBits_AndLetThemGo(Precision precision)
    {
        await using var cluster = await ParameterServerStepTests.StartAsync(1, new LogCapture(LogLevel.Warning));
        var uploads = Uploads(cluster);
        // Three workers on mini-batches (each reads every row), 11 test rows the parameter server scores.
        var spec = Jobs.Small(workers: 3, steps: 12, batch: 8, loss: LossKind.Mse) with
            { Samples = 30, TestSamples = 11, Precision = precision, Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam } };
        var rows = Synthetic.Data(spec.Samples + spec.TestSamples, spec.Model.InputSize, spec.Model.OutputSize, seed: 5);
        long fetchesBefore = uploads.Fetches;

        var (id, status, losses) = await Jobs.RunAsync(cluster.Client, Jobs.Uploaded(spec, rows), Token);

        await Jobs.AssertCompletedAsAsync(cluster.Client, id, status, losses, Jobs.Local(spec, rows.Take(spec.Samples)));
        // One set of every row for all four grains, in either precision: a float32 job's reads narrow the
        // float64 rows (no narrowed copy beside them), and its parameter server scores the test rows on them.
        Assert.Equal(1, uploads.Fetches - fetchesBefore);
        await PollAsync(() => uploads.HeldCount == 0, "the silo still holds the job's rows after it ended");
    }

    [Fact]
    public async Task Holders_OfOneJobsRows_ShareThem_InEitherPrecision_AnotherJobsEqualRows_AndANewVersion_AreHeldApart()
    {
        await using var cluster = await ParameterServerStepTests.StartAsync(1, new LogCapture(LogLevel.Warning));
        var uploads = Uploads(cluster);
        var grains = ((InProcessSiloHandle)cluster.Silos[0]).ServiceProvider.GetRequiredService<IGrainFactory>();
        var spec = Jobs.Small(workers: 2, batch: 8) with { Samples = 30 };
        var rows = Synthetic.Data(spec.Samples, spec.Model.InputSize, spec.Model.OutputSize, seed: 3);
        await StoreAsync(grains, "job-a", rows);
        await StoreAsync(grains, "job-b", rows);

        var a1 = await Acquire(uploads, grains, "job-a", spec);
        var a2 = await Acquire(uploads, grains, "job-a", spec);
        var b = await Acquire(uploads, grains, "job-b", spec);

        Assert.Same(a1.Rows, a2.Rows);
        Assert.NotSame(a1.Rows, b.Rows);
        Assert.Equal(2, uploads.HeldCount);
        // A float32 job's grains hold the same float64 rows (their reads narrow them), not a narrowed copy beside them.
        using (var a32 = await Acquire(uploads, grains, "job-a", spec with { Precision = Precision.Float32 }))
            Assert.Same(a1.Rows, a32.Rows);
        var (x, y) = a1.Rows.ToArrays<double>();
        Assert.Equal(rows.X, x);
        Assert.Equal(rows.Y, y);

        // The same rows stored again as new arrays: a new version, fetched anew while the old is held.
        await StoreAsync(grains, "job-a", rows);
        var a3 = await Acquire(uploads, grains, "job-a", spec);
        Assert.NotSame(a1.Rows, a3.Rows);
        Assert.Equal(3, uploads.HeldCount);

        foreach (var held in new[] { a1, a2, b, a3 }) held.Dispose();
        a1.Dispose();   // a second release of one hold changes nothing
        Assert.Equal(0, uploads.HeldCount);
        Assert.Equal(3, uploads.Fetches);
    }

    private static SiloUploads Uploads(InProcessTestCluster cluster) =>
        ((InProcessSiloHandle)cluster.Silos[0]).ServiceProvider.GetRequiredService<SiloUploads>();

    private static Task StoreAsync(IGrainFactory grains, string job, Dataset rows) =>
        grains.GetGrain<IDatasetGrain>(job).StoreAsync(new DatasetTransfer(rows.Count, rows.InputSize, rows.OutputSize,
            TensorTransfer.Of(TensorPayload.From(rows.X)), TensorTransfer.Of(TensorPayload.From(rows.Y))));

    // The test's rows fit one chunk: their transfers come inline.
    private static async Task<SiloUploads.HeldRows> Acquire(SiloUploads uploads, IGrainFactory grains, string job, TrainingSpec spec) =>
        (await uploads.AcquireAsync(grains, job, spec,
            t => Task.FromResult<DatasetPayload?>(t is null ? null : new DatasetPayload(t.Count, t.InputSize, t.OutputSize, t.X.Inline!, t.Y.Inline!))))!;

    private static async Task PollAsync(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(50, Token);
        }
    }
}
