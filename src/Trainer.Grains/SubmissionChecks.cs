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
            if (submission.Data is { } data) CheckData(spec, data);
            int expected = ParameterLayout.For(spec.Model).Count;
            if (expected > WireLimits.MaxParameters)
                throw new SpecException("model", spec.Model.Architecture,
                    $"the model has {expected} parameters ({expected * 8L >> 20} MB as float64); the buffer must fit one array of {WireLimits.MaxTensorBytes >> 20} MB, so at most {WireLimits.MaxParameters} parameters are allowed");
            if (submission.InitialParameters is { } init && init.Length != expected)
                throw new SpecException("init", $"{init.Length} parameters", $"the model {spec.Model.Architecture} has {expected}");
            return spec;
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
        if (data.Count != spec.ResolvedSamples)
            throw new SpecException(spec.MiniBatches ? "samples" : "batch", spec.MiniBatches ? spec.Samples : spec.Batch,
                spec.MiniBatches ? $"the uploaded data has {data.Count} samples and the spec must say so" : $"the uploaded data has {data.Count} samples, so the batch must be {data.Count} or the spec's samples {data.Count}");
        if (data.X.Length != (long)data.Count * data.InputSize || data.Y.Length != (long)data.Count * data.OutputSize)
            throw new SpecException("data", $"{data.X.Length} + {data.Y.Length} values", $"{data.Count} samples need {data.Count * data.InputSize} inputs and {data.Count * data.OutputSize} targets");
    }
}
