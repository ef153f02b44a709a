using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;

namespace Trainer.Core.Training;

/// <summary>
/// The single-process reference: every step runs forward/backward on each shard in turn, reduces
/// in shard order and applies SGD, exactly as the cluster does. With one shard it is the plain
/// full-batch loop of the seed; the cluster must match it bit for bit for the same shard count.
/// </summary>
public sealed class LocalTrainer
{
    private readonly IGradientModel _model;
    private readonly Dataset _data;
    private readonly Shard[] _shards;
    private readonly GradientReducer _reducer;
    private readonly IOptimizer _optimizer;
    private readonly double[] _shardGradient;

    public LocalTrainer(TrainingSpec spec, Dataset data, double[] parameters, IGradientModel? model = null)
    {
        spec.Validate();
        _model = model ?? GradientModels.Create(spec);
        if (parameters.Length != _model.Layout.Count)
            throw new ArgumentException($"parameters has {parameters.Length} values, the model has {_model.Layout.Count}.", nameof(parameters));
        if (data.Count < spec.Batch)
            throw new SpecException("batch", spec.Batch, $"the data has {data.Count} samples, so at most {data.Count}");
        _data = data.Take(spec.Batch);
        _shards = Shard.Split(_data.Count, spec.Workers);
        _reducer = new GradientReducer(parameters.Length, spec.Model.Loss, _data.Count, _data.OutputSize, _shards.Length);
        _optimizer = new Sgd(spec.LearningRate);
        _shardGradient = new double[parameters.Length];
        Parameters = parameters;
    }

    public double[] Parameters { get; }

    /// <summary>One step; returns the loss of the forward pass, computed before the update.</summary>
    public double Step()
    {
        _reducer.Reset();
        foreach (var shard in _shards)
        {
            double loss = _model.LossAndGradient(Parameters, _data.InputsOf(shard), _data.TargetsOf(shard), shard.Count, _shardGradient);
            _reducer.Add(shard.Rank, loss, _shardGradient);
        }
        double total = _reducer.Complete();
        _optimizer.Step(Parameters, _reducer.Gradient);
        return total;
    }
}
