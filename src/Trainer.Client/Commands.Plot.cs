using System.CommandLine;
using Trainer.Abstractions;
using Trainer.Core;

namespace Trainer.Client;

/// <summary>`trainer plot` and `train --plot`: losses from jobs or --json logs, drawn by <see cref="LossPlot"/>.</summary>
internal sealed partial class Commands
{
    private async Task<int> Plot(ParseResult r, CancellationToken cancellation)
    {
        var file = PlotFile.Parse("out", r.GetValue(CliOptions.PlotOut)!);
        if (r.GetValue(CliOptions.PlotX) is var x and not "step")
            throw new SpecException("x", x, "allowed: step (a job's losses are per step; its eval events carry their epoch)");
        var series = new List<LossSeries>();
        ClusterConnection? cluster = null;
        try
        {
            foreach (var source in r.GetValue(CliOptions.PlotSources)!)
            {
                LossSeries read;
                if (IsFile(source)) read = LossLogReader.Read(source);
                else
                {
                    cluster ??= await ConnectForJob(r, source, cancellation);
                    read = await new JobLossReader(_retry).ReadAsync(cluster.Client.GetGrain<ITrainingJobGrain>(source), source, cancellation);
                }
                // Two logs of the same name in different folders: the legend shows them as typed.
                series.Add(series.Any(s => s.Name == read.Name) ? read with { Name = source } : read);
            }
        }
        finally
        {
            if (cluster is not null) await cluster.DisposeAsync();
        }
        LossPlot.Save(series, file, r.GetValue(CliOptions.LogY));
        output.WriteLine($"wrote {file.Path}: loss against step for {string.Join(", ", series.Select(s => s.Name))}");
        return ExitCodes.Success;
    }

    /// <summary>
    /// A source that exists as a file, or looks like one (a folder or an extension: job ids have
    /// neither), is a log; anything else is a job id.
    /// </summary>
    private static bool IsFile(string source) =>
        File.Exists(source) || source.Contains(Path.DirectorySeparatorChar) || source.Contains('/') || Path.HasExtension(source);

    private Task<ClusterConnection> ConnectForJob(ParseResult r, string jobId, CancellationToken cancellation)
    {
        if (Gateway(r) is null)
            throw new SpecException(LossLogReader.Field, jobId,
                "there is no such file, and reading a job needs --gateway host:port or TRAINER_GATEWAY (the cluster that runs it)");
        return Connect(r, cancellation);
    }

    /// <summary>
    /// `train --plot`: the job's whole history (a resumed job's includes the job it continues). A
    /// plot that cannot be drawn is a warning: the exit code stays the job's.
    /// </summary>
    private async Task PlotTrainedAsync(ITrainingJobGrain job, string jobId, PlotFile file, bool json, CancellationToken cancellation)
    {
        var series = await new JobLossReader(_retry).ReadAsync(job, jobId, cancellation);
        try
        {
            LossPlot.Save([series], file, logY: false);
        }
        catch (SpecException e)
        {
            error.WriteLine($"trainer: no plot written: {e.Message}");
            return;
        }
        if (!json) output.WriteLine($"wrote plot to {file.Path}");
    }
}
