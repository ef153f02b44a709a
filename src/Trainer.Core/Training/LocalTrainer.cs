using System.Numerics;
using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;

namespace Trainer.Core.Training;

/// <summary>
/// The single-process reference: every step runs forward/backward on each shard in turn, combines
/// the shards' packs in shard order and applies the update, with the same code and exchange plan
/// as the cluster. With one shard it is the plain
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
    // A split job's parameters live in its workers' shares; they are merged when read, not every step.
    private readonly Action? _merge;

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
        if (spec.Parallelism == Parallelism.SplitFirstLayer)
        {
            if (model is not null) throw new ArgumentException("A split job runs the hand-derived layers; no model may be given.", nameof(model));
            if (spec.Precision == Precision.Float32)
            {
                _single = Precisions.Narrow(parameters);
                var loop = new SplitLoop<float>(spec, Precisions.Narrow(batch.X), Precisions.Narrow(batch.Y), _single);
                (_step, _merge) = (loop.Step, loop.Merge);
            }
            else
            {
                var loop = new SplitLoop<double>(spec, batch.X, batch.Y, parameters);
                (_step, _merge) = (loop.Step, loop.Merge);
            }
        }
        else if (spec.Precision == Precision.Float32)
        {
            _single = Precisions.Narrow(parameters);
            _step = new Loop<float>(spec, GradientModels.CreateSingle(spec), Precisions.Narrow(batch.X), Precisions.Narrow(batch.Y), batch, shards, _single).Step;
        }
        else
        {
            _step = new Loop<double>(spec, model ?? GradientModels.Create(spec), batch.X, batch.Y, batch, shards, parameters).Step;
        }
    }

    /// <summary>The current parameters, in the array given to the constructor (updated in place; a split job's are merged into it when read).</summary>
    public double[] Parameters
    {
        get
        {
            _merge?.Invoke();
            if (_single is not null) Precisions.Widen(_single, _parameters);
            return _parameters;
        }
    }

    /// <summary>One step; returns the loss of the forward pass, computed before the update.</summary>
    public double Step() => _step();

    private sealed class Loop<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly IGradientModel<T> _model;
        private readonly ExchangePlan _plan;
        private readonly T[] _x, _y, _parameters, _update;
        private readonly T[][] _packs;
        private readonly Pack[] _layouts;
        private readonly int _inputs, _outputs;
        private readonly Shard[] _shards;
        private readonly UpdateBuilder<T> _builder;
        private readonly ReplicaUpdate<T> _replica;

        public Loop(TrainingSpec spec, IGradientModel<T> model, T[] x, T[] y, Dataset batch, Shard[] shards, T[] parameters)
        {
            if (parameters.Length != model.Layout.Count)
                throw new ArgumentException($"parameters has {parameters.Length} values, the model has {model.Layout.Count}.", nameof(parameters));
            (_model, _x, _y, _shards, _parameters) = (model, x, y, shards, parameters);
            (_inputs, _outputs) = (batch.InputSize, batch.OutputSize);
            _plan = ExchangePlan.For(spec.Model, spec.Batch, model is IFactoredGradientModel<T> && spec.Engine == Engine.Hand);
            _builder = new UpdateBuilder<T>(spec, _plan);
            _replica = new ReplicaUpdate<T>(spec, _plan);
            _layouts = _plan.ShardPacks(shards.Length);
            _packs = [.. _layouts.Select(layout => new T[layout.Length])];
            _update = new T[_builder.UpdateLength];
        }

        public double Step()
        {
            _builder.Reset();
            foreach (var shard in _shards)
            {
                var x = _x.AsSpan(shard.Start * _inputs, shard.Count * _inputs);
                var y = _y.AsSpan(shard.Start * _outputs, shard.Count * _outputs);
                var pack = _packs[shard.Rank];
                double loss = GradientModels.LossAndPack(_model, _parameters, x, y, shard.Count, _layouts[shard.Rank], pack);
                _builder.Add(shard.Rank, loss, pack, _update);
            }
            double total = _builder.Complete();
            _replica.Apply(_update, _x, _parameters);
            return total;
        }
    }

    /// <summary>A split job's workers, one after another, exchanging their activation blocks in rank order as the cluster does.</summary>
    private sealed class SplitLoop<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly FirstLayerSplit<T>[] _workers;
        private readonly T[] _blocks, _parameters;
        private readonly T[][] _shares;
        private readonly TrainingSpec _spec;

        public SplitLoop(TrainingSpec spec, T[] x, T[] y, T[] parameters)
        {
            (_spec, _parameters) = (spec, parameters);
            _workers = [.. Enumerable.Range(0, spec.Workers).Select(rank => new FirstLayerSplit<T>(spec, rank, x, y))];
            foreach (var worker in _workers) worker.Load(parameters, 0);
            _blocks = new T[spec.Batch * spec.Model.LayerSizes[1]];
            _shares = [.. _workers.Select(w => new T[w.ShareLength])];
        }

        public double Step()
        {
            foreach (var worker in _workers) worker.Activations(_blocks.AsSpan(_spec.Batch * worker.Units.Start, worker.BlockLength));
            double loss = 0;
            foreach (var worker in _workers) loss = worker.Step(_blocks);
            return loss;
        }

        /// <summary>Writes the workers' shares into the whole-model parameters.</summary>
        public void Merge()
        {
            for (int r = 0; r < _workers.Length; r++) _workers[r].WriteShare(_shares[r]);
            FirstLayerSplit<T>.Merge(_spec, _shares, _parameters);
        }
    }
}
