using System.Numerics;
using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;

namespace Trainer.Core.Training;

/// <summary>
/// The single-process reference: every step runs forward/backward on each shard in turn, reduces
/// in shard order and applies SGD, exactly as the cluster does. With one shard it is the plain
/// full-batch loop of the seed; the cluster must match it bit for bit for the same shard count.
/// </summary>
/// <remarks>
/// A float32 spec narrows the data and the parameters once and trains in float;
/// <see cref="Parameters"/> then widens the float values (exactly) into the caller's array.
/// </remarks>
public sealed class LocalTrainer
{
    private readonly double[] _parameters;
    private readonly float[]? _single;
    private readonly Func<double> _step;

    public LocalTrainer(TrainingSpec spec, Dataset data, double[] parameters, IGradientModel? model = null)
    {
        spec.Validate();
        if (data.Count < spec.Batch)
            throw new SpecException("batch", spec.Batch, $"the data has {data.Count} samples, so at most {data.Count}");
        if (model is not null && spec.Precision != Precision.Float64)
            throw new ArgumentException("A float64 model was given for a float32 spec.", nameof(model));
        var batch = data.Take(spec.Batch);
        var shards = Shard.Split(batch.Count, spec.Workers);
        _parameters = parameters;
        if (spec.Precision == Precision.Float32)
        {
            _single = Precisions.Narrow(parameters);
            _step = new Loop<float>(spec, GradientModels.CreateSingle(spec), Precisions.Narrow(batch.X), Precisions.Narrow(batch.Y), batch, shards, _single).Step;
        }
        else
        {
            _step = new Loop<double>(spec, model ?? GradientModels.Create(spec), batch.X, batch.Y, batch, shards, parameters).Step;
        }
    }

    /// <summary>The current parameters (the array given to the constructor, updated in place).</summary>
    public double[] Parameters
    {
        get
        {
            if (_single is not null) Precisions.Widen(_single, _parameters);
            return _parameters;
        }
    }

    /// <summary>One step; returns the loss of the forward pass, computed before the update.</summary>
    public double Step() => _step();

    private sealed class Loop<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly IGradientModel<T> _model;
        private readonly T[] _x, _y, _parameters, _shardGradient;
        private readonly int _inputs, _outputs;
        private readonly Shard[] _shards;
        private readonly ParameterUpdate<T> _update;

        public Loop(TrainingSpec spec, IGradientModel<T> model, T[] x, T[] y, Dataset batch, Shard[] shards, T[] parameters)
        {
            if (parameters.Length != model.Layout.Count)
                throw new ArgumentException($"parameters has {parameters.Length} values, the model has {model.Layout.Count}.", nameof(parameters));
            (_model, _x, _y, _shards, _parameters) = (model, x, y, shards, parameters);
            (_inputs, _outputs) = (batch.InputSize, batch.OutputSize);
            _update = new ParameterUpdate<T>(spec, parameters.Length, batch.Count);
            _shardGradient = new T[parameters.Length];
        }

        public double Step()
        {
            _update.Reset();
            foreach (var shard in _shards)
            {
                var x = _x.AsSpan(shard.Start * _inputs, shard.Count * _inputs);
                var y = _y.AsSpan(shard.Start * _outputs, shard.Count * _outputs);
                double loss = _model.LossAndGradient(_parameters, x, y, shard.Count, _shardGradient);
                _update.Add(shard.Rank, loss, _shardGradient);
            }
            return _update.Complete(_parameters, _parameters);
        }
    }
}
