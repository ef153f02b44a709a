using System.Numerics;
using Trainer.Core;
using Trainer.Core.Data;
using Trainer.Core.Models;
using Trainer.Core.Optim;

namespace Trainer.Core.Training;

/// <summary>
/// The single-process reference: every step runs each worker's half in turn (forward/backward on its
/// micro-shards, <see cref="RankStep{T}"/>), combines the workers' packs in rank order and applies
/// the update, with the same code and exchange plan as the cluster. The cluster must match it bit for
/// bit; a data-parallel job's bits do not depend on its worker count (up to its micro-shard count).
/// </summary>
/// <remarks>
/// A float32 spec narrows the data, the parameters and the optimizer state once and trains in float;
/// <see cref="Parameters"/> and <see cref="OptimizerState"/> then widen the float values (exactly).
/// A trainer built from (parameters, optimizer state, k) after k steps continues with the bits of an
/// uninterrupted run: the step number, not a counter in the state, drives the schedule.
/// </remarks>
public sealed class LocalTrainer
{
    private readonly double[] _parameters, _state;
    private readonly float[]? _single, _singleState;
    private readonly Func<int, double> _step;
    // A split job's parameters and state live in its workers' shares; they are merged when read, not every step.
    private readonly Action? _merge;

    /// <param name="parameters">The initial parameters, updated in place (see <see cref="Parameters"/>).</param>
    /// <param name="model">A float64 gradient model to use instead of the spec's (data parallelism only).</param>
    /// <param name="optimizerState">
    /// The optimizer's state after <paramref name="stepsCompleted"/> steps, slot after slot over the flat
    /// parameters (StateSlots·parameter count values), updated in place; null: zeros, as before step 1.
    /// </param>
    /// <param name="stepsCompleted">Steps the parameters and state have already taken; the next step is this + 1.</param>
    public LocalTrainer(TrainingSpec spec, Dataset data, double[] parameters, IGradientModel? model = null,
        double[]? optimizerState = null, int stepsCompleted = 0)
    {
        spec.Validate();
        if (data.Count < spec.ResolvedSamples)
            throw new SpecException(spec.Samples == 0 ? "batch" : "samples", spec.Samples == 0 ? spec.Batch : spec.Samples, $"the data has {data.Count} samples, so at most {data.Count}");
        if (model is not null && spec.Precision != Precision.Float64)
            throw new ArgumentException("A float64 model was given for a float32 spec.", nameof(model));
        int slots = spec.Optimizer.StateSlots, count = ParameterLayout.For(spec.Model).Count;
        if (optimizerState is not null) Optimizers.CheckState(spec.Optimizer, optimizerState.Length, count, nameof(optimizerState));
        if (stepsCompleted < 0 || stepsCompleted > spec.Steps)
            throw new ArgumentOutOfRangeException(nameof(stepsCompleted), stepsCompleted, $"allowed: 0 to the job's {spec.Steps} steps");
        var batch = data.Take(spec.ResolvedSamples);
        _parameters = parameters;
        _state = optimizerState ?? new double[slots * count];
        StepsCompleted = stepsCompleted;
        if (spec.Parallelism == Parallelism.SplitFirstLayer)
        {
            if (model is not null) throw new ArgumentException("A split job runs the hand-derived layers; no model may be given.", nameof(model));
            if (spec.Precision == Precision.Float32)
            {
                (_single, _singleState) = (Precisions.Narrow(parameters), Precisions.Narrow(_state));
                var loop = new SplitLoop<float>(spec, Precisions.Narrow(batch.X), Precisions.Narrow(batch.Y), _single, _singleState, stepsCompleted);
                (_step, _merge) = (loop.Step, loop.Merge);
            }
            else
            {
                var loop = new SplitLoop<double>(spec, batch.X, batch.Y, parameters, _state, stepsCompleted);
                (_step, _merge) = (loop.Step, loop.Merge);
            }
        }
        else if (spec.Precision == Precision.Float32)
        {
            (_single, _singleState) = (Precisions.Narrow(parameters), Precisions.Narrow(_state));
            _step = new Loop<float>(spec, GradientModels.CreateSingle(spec), Precisions.Narrow(batch.X), Precisions.Narrow(batch.Y), batch, _single, _singleState).Step;
        }
        else
        {
            _step = new Loop<double>(spec, model ?? GradientModels.Create(spec), batch.X, batch.Y, batch, parameters, _state).Step;
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

    /// <summary>
    /// The optimizer's state (float64, widened exactly for a float32 job), slot after slot over the flat
    /// parameters: momentum's buffer, or Adam's m then v; empty for SGD. In the array given to the
    /// constructor, if one was.
    /// </summary>
    public double[] OptimizerState
    {
        get
        {
            _merge?.Invoke();
            if (_singleState is not null) Precisions.Widen(_singleState, _state);
            return _state;
        }
    }

    /// <summary>Steps taken so far, counting those completed before the constructor's state.</summary>
    public int StepsCompleted { get; private set; }

    /// <summary>One step (the job's step <see cref="StepsCompleted"/> + 1); returns the loss of the forward pass, computed before the update.</summary>
    public double Step()
    {
        double loss = _step(StepsCompleted + 1);
        StepsCompleted++;
        return loss;
    }

    private sealed class Loop<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly IGradientModel<T> _model;
        private readonly T[] _x, _y, _parameters, _state;
        // A mini-batch's rows, gathered from the data (unused when every step trains on all of it).
        private readonly T[] _batchX, _batchY;
        private readonly int _inputs, _outputs;
        private readonly BatchSchedule _schedule;
        private readonly PerBatchSize<Shape> _shapes;

        public Loop(TrainingSpec spec, IGradientModel<T> model, T[] x, T[] y, Dataset data, T[] parameters, T[] state)
        {
            if (parameters.Length != model.Layout.Count)
                throw new ArgumentException($"parameters has {parameters.Length} values, the model has {model.Layout.Count}.", nameof(parameters));
            (_model, _x, _y, _parameters, _state) = (model, x, y, parameters, state);
            (_inputs, _outputs) = (data.InputSize, data.OutputSize);
            _schedule = spec.Schedule();
            (_batchX, _batchY) = _schedule.Fixed ? ([], []) : (new T[spec.Batch * _inputs], new T[spec.Batch * _outputs]);
            var plan = ExchangePlan.For(spec.Model, spec.Batch, model is IFactoredGradientModel<T> && spec.Engine == Engine.Hand, spec.ResolvedMicroShards);
            _shapes = new(_schedule, size => new Shape(spec, plan.ForBatch(size)));
        }

        public double Step(int step)
        {
            int size = _schedule.SizeOf(step);
            var shape = _shapes.For(step);
            var (xs, ys) = Batch(step, size);
            ReadOnlySpan<T> x = xs.AsSpan(0, size * _inputs), y = ys.AsSpan(0, size * _outputs);
            shape.Builder.Reset();
            foreach (var worker in shape.Workers)
            {
                var rows = worker.Layout.Rows;
                var (pack, losses) = (shape.Packs[worker.Rank], shape.Losses[worker.Rank]);
                worker.Compute(_model, _parameters, x.Slice(rows.Start * _inputs, rows.Count * _inputs), y.Slice(rows.Start * _outputs, rows.Count * _outputs), pack, losses);
                shape.Builder.Add(worker.Rank, losses, pack, shape.Update);
            }
            double total = shape.Builder.Complete();
            shape.Replica.Apply(step, shape.Update, x, _parameters, _state);
            return total;
        }

        /// <summary>Arrays whose first rows are the step's batch: all the data in order, or its mini-batch's rows gathered.</summary>
        private (T[] X, T[] Y) Batch(int step, int size)
        {
            if (_schedule.Fixed) return (_x, _y);
            _schedule.Gather<T>(step, _x, _inputs, 0, _batchX.AsSpan(0, size * _inputs));
            _schedule.Gather<T>(step, _y, _outputs, 0, _batchY.AsSpan(0, size * _outputs));
            return (_batchX, _batchY);
        }

        /// <summary>What a step of one batch size works with.</summary>
        private sealed class Shape
        {
            public Shape(TrainingSpec spec, ExchangePlan plan)
            {
                Builder = new UpdateBuilder<T>(spec, plan);
                Replica = new ReplicaUpdate<T>(spec, plan);
                Workers = [.. Enumerable.Range(0, spec.Workers).Select(rank => new RankStep<T>(plan, rank, spec.Workers))];
                Packs = [.. Workers.Select(w => new T[w.Layout.Length])];
                Losses = [.. Workers.Select(w => new double[w.Layout.Blocks.Count])];
                Update = new T[Builder.UpdateLength];
            }

            public UpdateBuilder<T> Builder { get; }
            public ReplicaUpdate<T> Replica { get; }
            public RankStep<T>[] Workers { get; }
            public T[][] Packs { get; }
            public double[][] Losses { get; }
            public T[] Update { get; }
        }
    }

    /// <summary>A split job's workers, one after another, exchanging their activation blocks in rank order as the cluster does.</summary>
    private sealed class SplitLoop<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly FirstLayerSplit<T>[] _workers;
        private readonly T[] _blocks, _parameters, _state;
        private readonly T[][] _shares;
        private readonly TrainingSpec _spec;

        public SplitLoop(TrainingSpec spec, T[] x, T[] y, T[] parameters, T[] state, int stepsCompleted)
        {
            (_spec, _parameters, _state) = (spec, parameters, state);
            _workers = [.. Enumerable.Range(0, spec.Workers).Select(rank => new FirstLayerSplit<T>(spec, rank, x, y))];
            foreach (var worker in _workers) worker.Load(parameters, state, stepsCompleted);
            _blocks = new T[spec.Batch * spec.Model.LayerSizes[1]];
            _shares = [.. _workers.Select(w => new T[w.ShareLength])];
        }

        /// <summary>Step <paramref name="step"/>; the workers count their steps themselves (each loaded with the same count), so this only checks they agree.</summary>
        public double Step(int step)
        {
            if (_workers[0].StepsApplied + 1 != step)
                throw new InvalidOperationException($"The split workers are at step {_workers[0].StepsApplied + 1}, not {step}.");
            foreach (var worker in _workers) worker.Activations(_blocks.AsSpan(_spec.Batch * worker.Units.Start, worker.BlockLength));
            double loss = 0;
            foreach (var worker in _workers) loss = worker.Step(_blocks);
            return loss;
        }

        /// <summary>Writes the workers' shares into the whole-model parameters and optimizer state.</summary>
        public void Merge()
        {
            for (int r = 0; r < _workers.Length; r++) _workers[r].WriteShare(_shares[r]);
            FirstLayerSplit<T>.Merge(_spec, _shares, _parameters, _state);
        }
    }
}
