using Trainer.Abstractions;
using Trainer.Client;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A submission rides out a moment's failure in the cluster: `trainer train` against a silo whose Redis
/// stalls as the job is submitted retries, and the job runs as it would have; a submission whose answer
/// was lost is found under its id, not started twice; a refusal stands.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SubmitRetryTests(ClusterFixture fixture)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public static TheoryData<string[]> JobOptions => new()
    {
        // The seed job's submission fits one message.
        { ["--steps", "5"] },
        // 512 Fashion-MNIST images are uploaded in chunks, read from the files a chunk at a time: a retry opens them again.
        { ["--data", $"idx:{Cli.SmallFashionMnist}", "--model", "784-16-10", "--activation", "relu", "--bias", "--loss", "ce", "--optimizer", "adam", "--lr", "1e-3", "--batch", "128", "--epochs", "1"] },
    };

    [Theory]
    [MemberData(nameof(JobOptions))]
    public async Task Train_WhenRedisStallsAsTheJobIsSubmitted_RetriesTheSubmission_AndTheJobRunsToTheLossesOfAnUndisturbedRun(string[] job)
    {
        var (code, undisturbed, err) = await Cli.RunAsync(["train", .. job, "--json"]);
        Assert.True(code == 0, err);
        await using var redis = await RedisServer.StartAsync();
        await using var silo = await LoopbackSilo.StartAsync(Token, redis: redis.Endpoint);
        // The silo is serving, and has stored (the job registry) in Redis, before Redis stops answering.
        (code, _, err) = await Cli.RunAsync("list", "--gateway", silo.Gateway);
        Assert.True(code == 0, err);

        redis.Pause();
        // Redis goes on once the client has said it retries: the job grain's first read of its state timed out.
        var error = new LineWriter(line => { if (line.EndsWith("; retrying", StringComparison.Ordinal)) redis.Resume(); });
        var output = new StringWriter();
        try
        {
            code = await new Commands(output, error).RunAsync(["train", .. job, "--json", "--gateway", silo.Gateway]);
        }
        finally
        {
            redis.Resume();
        }

        Assert.True(code == 0, $"{output}\n{error}");
        Assert.Matches(@"trainer: the cluster did not answer \(OrleansException: Error from storage provider \S+ during ReadStateAsync for grain trainingjob/job-\w+\); retrying", error.ToString());
        Assert.Equal(Losses(undisturbed), Losses(output.ToString()));
        var completed = Assert.Single(Cli.Events(output.ToString(), "completed"));
        Assert.Equal(Assert.Single(Cli.Events(undisturbed, "completed")).GetProperty("final_loss").GetDouble(), completed.GetProperty("final_loss").GetDouble());
        // One job, not one per attempt.
        (code, var listed, err) = await Cli.RunAsync("list", "--gateway", silo.Gateway);
        Assert.True(code == 0, err);
        Assert.Single(listed.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("job-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ASubmissionWhoseAnswerWasLost_IsFoundUnderItsId_NotStartedTwice()
    {
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());
        var submission = Jobs.Synthetic(Jobs.Small(2));
        var error = new StringWriter();
        int attempts = 0;

        var started = await new ClusterRetry(error).SubmitAsync(job, async _ =>
        {
            attempts++;
            var status = await job.SubmitAsync(submission);
            // The job started; its answer never reached the client.
            if (attempts == 1) throw new TimeoutException("the answer was lost");
            return status;
        }, Token);

        Assert.Equal(2, attempts);
        Assert.Equal(job.GetPrimaryKeyString(), started.JobId);
        Assert.NotEqual(JobState.Unknown, started.State);
        Assert.Contains("trainer: the cluster did not answer (TimeoutException); retrying", error.ToString());
    }

    [Fact]
    public async Task ARefusalAfterAFailedAttempt_Stands_WhenNoJobWasStarted()
    {
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());
        var bad = Jobs.Synthetic(Jobs.Small(2) with { Steps = 0 });
        int attempts = 0;

        var refused = await Assert.ThrowsAsync<JobRejectedException>(() => new ClusterRetry(TextWriter.Null).SubmitAsync(job,
            _ => ++attempts == 1 ? throw new TimeoutException("nothing reached the cluster") : job.SubmitAsync(bad), Token));

        Assert.Equal("steps", refused.Field);
        Assert.Equal(2, attempts);
        Assert.Equal(JobState.Unknown, (await job.GetStatusAsync()).State);
    }

    [Fact]
    public async Task ARefusalOfTheFirstAttempt_IsNotRetried()
    {
        var job = fixture.Client.GetGrain<ITrainingJobGrain>(Jobs.NewId());
        var bad = Jobs.Synthetic(Jobs.Small(2) with { Steps = 0 });
        int attempts = 0;

        await Assert.ThrowsAsync<JobRejectedException>(() => new ClusterRetry(TextWriter.Null).SubmitAsync(job, _ => { attempts++; return job.SubmitAsync(bad); }, Token));

        Assert.Equal(1, attempts);
    }

    private static double[] Losses(string output) => [.. Cli.Events(output, "step").Select(e => e.GetProperty("loss").GetDouble())];

    /// <summary>Text written to it, with each line handed to <paramref name="onLine"/> as it is written.</summary>
    private sealed class LineWriter(Action<string> onLine) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value is not null) onLine(value);
        }
    }
}
