using Trainer.Abstractions;
using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// A job's data as this silo reads it from the files a <see cref="SiloData"/> names (<c>--data-on-silos</c>),
/// opened and checked through the silo's <see cref="StoredFiles"/>: the files are held (mapped, or one
/// decompressed copy per silo) until this is disposed. <see cref="Rows"/> are the job's rows in the order
/// an upload sends them: its training rows, its validation rows, its test rows.
/// </summary>
public sealed class SiloJobData : IDisposable
{
    private readonly OpenedData _data;
    private readonly OpenedData? _test;

    private SiloJobData(OpenedData data, OpenedData? test, string silo)
    {
        (_data, _test) = (data, test);
        var testSet = TestSet;
        Facts = new SiloDataFacts(data.Train.Count, data.Train.InputSize, data.Train.OutputSize, testSet?.Count ?? 0, silo);
    }

    public SiloDataFacts Facts { get; }

    private StoredSet? TestSet => _test?.Train ?? _data.Test;

    /// <summary>Opens <paramref name="data"/>'s files for <paramref name="model"/>; refusals are <see cref="SpecException"/>s naming the file and the silo.</summary>
    public static SiloJobData Open(SiloData data, ModelSpec model, StoredFiles files, string silo)
    {
        files.RequireAllowed("data", data.Data, RequireAbsolute("data", data.Data, files.Where));
        if (data.Test is { } test) files.RequireAllowed("test", test, RequireAbsolute("test", test, files.Where));
        return OpenFolders(data, model, files, silo);
    }

    /// <summary>
    /// Opens <paramref name="data"/>'s files by the paths as typed, relative ones too, for a silo in this
    /// process (an embedded silo sharing <paramref name="files"/>): its grains, given the absolute paths,
    /// find the files open and checked. Refusals are <see cref="SpecException"/>s naming the file as typed.
    /// </summary>
    public static SiloJobData OpenInThisProcess(SiloData data, ModelSpec model, StoredFiles files) => OpenFolders(data, model, files, "this process");

    private static SiloJobData OpenFolders(SiloData data, ModelSpec model, StoredFiles files, string silo)
    {
        var opened = DataFolders.Open(data.Data, model, data.Scale, files);
        try
        {
            var other = data.Test is { } testFolder ? DataFolders.Open(testFolder, model, data.Scale, files, "test") : null;
            try
            {
                if (other is not null) DataFolders.RequireSameRows(data.Test!, other.Train, data.Data, opened.Train, files.Where);
            }
            catch
            {
                other!.Dispose();
                throw;
            }
            return new SiloJobData(opened, other, silo);
        }
        catch
        {
            opened.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the files of a job already started, for its worker or parameter server on this silo, checked
    /// against its spec. A file this silo cannot read, or reads other than the job was built for, fails the
    /// job: an <see cref="InvalidDataException"/> (bad data, which no replay can fix: <see cref="Failures"/>)
    /// with the refusal's message, naming the file and the silo. NOTE: neither the <see cref="SpecException"/>
    /// nor it as an inner exception: Orleans has no codec for it, and the job would fail with a CodecNotFoundException.
    /// </summary>
    public static SiloJobData OpenFor(SiloData data, TrainingSpec spec, StoredFiles files, string silo)
    {
        SiloJobData? opened = null;
        try
        {
            opened = Open(data, spec.Model, files, silo);
            opened.RequireFits(spec);
            return opened;
        }
        catch (SpecException e)
        {
            opened?.Dispose();
            throw new InvalidDataException(e.Message);
        }
    }

    /// <summary>
    /// A path a silo reads must be absolute: a relative one would be relative to each silo's own
    /// working directory, and could name other files on each. Refused naming <paramref name="field"/>.
    /// </summary>
    /// <returns>The folder.</returns>
    public static string RequireAbsolute(string field, string value, string where = "")
    {
        string folder = DataFolders.Folder(value, DataFolders.NpyScheme) ?? DataFolders.Folder(value, DataFolders.IdxScheme)
            ?? throw new SpecException(field, value, DataFolders.Allowed);
        if (!Path.IsPathFullyQualified(folder))
            throw new SpecException(field, value, $"with --data-on-silos the folder must be an absolute path (a relative one would be read from each silo's own working directory{where}), e.g. {value[..4]}{Path.GetFullPath(folder)}");
        return folder;
    }

    /// <summary>
    /// The job's rows: the training files' rows, less the <see cref="TrainingSpec.ValidationSamples"/>
    /// the spec's seed holds out (<see cref="ValidationSplit"/>, as the client splits uploaded rows), then
    /// those held out, then the test rows when the spec has them.
    /// </summary>
    public ISampleRows Rows(TrainingSpec spec)
    {
        var train = _data.Train;
        var parts = new List<ISampleRows>();
        if (spec.ValidationSamples > 0)
        {
            var split = new ValidationSplit(train.Count, spec.ValidationSamples, spec.Seed);
            parts.Add(split.Training(train));
            parts.Add(split.Validation(train));
        }
        else parts.Add(train);
        if (spec.TestSamples > 0) parts.Add(TestSet ?? throw new InvalidOperationException("The spec has test rows; the data has no test set."));
        return parts.Count == 1 ? parts[0] : new ConcatenatedRows([.. parts]);
    }

    /// <summary>
    /// Refuses a spec that does not fit these files (the client built it from their facts, maybe read
    /// on another silo): the training rows, the held-out ones and the model's widths must agree.
    /// </summary>
    public void RequireFits(TrainingSpec spec)
    {
        var f = Facts;
        if (f.InputSize != spec.Model.InputSize || f.OutputSize != spec.Model.OutputSize)
            throw new SpecException("model", spec.Model.Architecture, $"the data in {_data.Description} has {f.InputSize} inputs and {f.OutputSize} targets per sample on silo {f.Silo}, so the model must be {f.InputSize}-...-{f.OutputSize}");
        if (spec.ResolvedSamples + spec.ValidationSamples != f.Samples || spec.TestSamples != f.TestSamples)
            throw new SpecException("data", _data.Description,
                $"on silo {f.Silo} it holds {f.Samples} training and {f.TestSamples} test samples, but the job was built for {spec.ResolvedSamples + spec.ValidationSamples} and {spec.TestSamples}; did the files change?");
    }

    public void Dispose()
    {
        _data.Dispose();
        _test?.Dispose();
    }
}
