using Trainer.Abstractions;
using Trainer.Core;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>Every check a submission must pass before anything starts; the first failure names its field.</summary>
internal static class SubmissionChecks
{
    public static TrainingSpec Check(JobSubmission submission)
    {
        try
        {
            var spec = submission.Spec.Validate();
            if (submission is { Data: not null, SiloData: { } both })
                throw new SpecException("data-on-silos", both.Data, "allowed only without uploaded samples: the silos read the data, or the client uploads it");
            if (submission.Data is { } data) CheckData(spec, data);
            // Data on the silos is checked against the spec where its files are opened (SiloJobData.RequireFits).
            else if (submission.SiloData is not null) { }
            else if (spec.TestSamples > 0)
                throw new SpecException("test-samples", spec.TestSamples, "allowed only with uploaded data, whose last rows they are");
            else if (spec.ValidationSamples > 0)
                throw new SpecException("val-samples", spec.ValidationSamples, "allowed only with uploaded data, whose rows after the training samples they are");
            int expected = ParameterLayout.For(spec.Model).Count;
            if (submission.InitialParameters is { } init && init.Length != expected)
                throw new SpecException("init", $"{init.Length} parameters", $"the model {spec.Model.Architecture} has {expected}");
            return spec;
        }
        catch (SpecException e)
        {
            throw new JobRejectedException(e.Field, e.Value, e.Message);
        }
    }

    /// <summary>The bytes of <paramref name="data"/>'s inputs as its storage holds them; a storage no reader knows is refused.</summary>
    public static long InputBytes(DatasetPayload data)
    {
        try
        {
            return data.InputBytes;
        }
        catch (SpecException e)
        {
            throw new JobRejectedException(e.Field, e.Value, e.Message);
        }
    }

    private static void CheckData(TrainingSpec spec, DatasetPayload data)
    {
        if (data.InputSize != spec.Model.InputSize)
            throw new SpecException("data", $"{data.InputSize} inputs per sample", $"the model {spec.Model.Architecture} takes {spec.Model.InputSize}");
        if (data.OutputSize != spec.Model.OutputSize)
            throw new SpecException("data", $"{data.OutputSize} targets per sample", $"the model {spec.Model.Architecture} outputs {spec.Model.OutputSize}");
        // The training samples, then the validation set's rows, then the test set's.
        int training = data.Count - spec.HeldOutSamples;
        string heldOut = $"{spec.ValidationSamples} validation and {spec.TestSamples} test rows";
        if (training != spec.ResolvedSamples)
            throw new SpecException(spec.MiniBatches ? "samples" : "batch", spec.MiniBatches ? spec.Samples : spec.Batch,
                spec.MiniBatches ? $"the uploaded data has {training} training samples (and {heldOut}) and the spec must say so"
                : $"the uploaded data has {training} training samples (and {heldOut}), so the batch must be {training} or the spec's samples {training}");
        var encoding = data.Encoding;
        if (data.X.Bytes.Length != data.InputBytes || data.Y.Bytes.Length != data.TargetBytes)
            throw new SpecException("data", $"{data.X.Bytes.Length} + {data.Y.Bytes.Length} bytes",
                $"{data.Count} samples need {(long)data.Count * data.InputSize} inputs as {encoding} ({data.InputBytes} bytes) and {(long)data.Count * data.OutputSize} float64 targets ({data.TargetBytes} bytes)");
    }
}
