using System.Numerics;
using System.Runtime.InteropServices;
using Trainer.Abstractions;
using Trainer.Core.Data;
using Trainer.Core.Memory;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// What a data-parallel job's parameter server owns, in the job's precision: the authoritative
/// parameters, the optimizer's state, and the step's update built from the workers' packs in SHARD
/// order (never arrival order). It applies the optimizer to the full-batch gradient the update stands
/// for with <see cref="ReplicaUpdate{T}"/>, the code the single-process trainer runs, so its
/// parameters are the single-process run's bits. The grain itself stays precision-blind.
/// </summary>
/// <remarks>
/// The workers keep caches of the parameters. With plain SGD a cache is brought up to date with the
/// update itself (every element gets the same operations as here, so the same bits; with factored
/// layers the update is the sufficient factors, Poseidon's "sufficient-factor broadcasting"), and the
/// server applies it to its own copy while the workers compute the next step (<see cref="ApplyPending"/>).
/// Any other optimizer's step is not a function of the update alone (it reads the state), so the
/// server applies it at once and the workers get the new parameters.
/// A model-state tensor (checkpoints, <see cref="ParameterState.Parameters"/>) is float64: the
/// parameters followed by the optimizer's state slots; parameters alone mean a zero state.
/// </remarks>
internal abstract class ServerModel
{
    /// <summary>Whether the workers' caches follow the updates (plain SGD) rather than being sent the parameters every step.</summary>
    public abstract bool CachesFollowUpdates { get; }

    /// <summary>
    /// Whether a job's workers' caches follow the updates: plain SGD on an unsharded server. Sharded, the
    /// optimizer runs on the shards, and the caches get the parameters they send back.
    /// </summary>
    public static bool CachesFollowUpdatesOf(TrainingSpec spec) => spec.Optimizer.Kind == OptimizerKind.Sgd && spec.ResolvedParameterServerShards() == 1;

    /// <summary>The parameters after the steps done (job precision), by reference: sent to workers, read before the next step changes them; unsharded only (the shards offer theirs).</summary>
    public abstract TensorPayload Parameters { get; }

    /// <summary>The update of the last completed step (<see cref="Complete"/>), what SGD caches apply.</summary>
    public abstract TensorPayload Update { get; }

    /// <summary>
    /// Takes a float64 model state (parameters, and the optimizer's state slots or none for a zero state)
    /// after <paramref name="stepsCompleted"/> steps (null: the spec's initial parameters, drawn from its seed
    /// straight into the server's own, with the bits of narrowing the float64 draws; unsharded only); <paramref name="inputs"/> are the data's rows (uploaded,
    /// or files the silo maps): the batch's, or with mini-batches every sample's, whose inputs are read
    /// when the plan factors the first layer.
    /// </summary>
    public abstract void Load(ModelState? modelState, int stepsCompleted, ISampleRows? inputs);

    /// <summary>
    /// Starts step <paramref name="step"/>'s update (a pending one may still be applied meanwhile, on another thread);
    /// begun again before it completed, it starts over.
    /// </summary>
    public abstract void Begin(int step);

    /// <summary>
    /// <see cref="Begin"/> for a team's step (<see cref="SharesParameters"/>): the update is built in the buffer of the
    /// step before, whose update was stepped on already and is read by nobody else, instead of the ring's other one.
    /// </summary>
    public virtual void BeginShared(int step) => Begin(step);

    /// <summary>
    /// Adds the next worker's pack and its blocks' summed losses; workers must come in rank order. A large pack is added in parts,
    /// one on the calling thread and the others on compute threads at the same time: element-wise,
    /// so the same bits (the sum of the last shard is on the step's critical path).
    /// </summary>
    /// <remarks>
    /// When the optimizer steps at once (not plain SGD) on an unsharded server and a layer is factored, each
    /// worker's factors are also multiplied out as its pack comes in, on a compute thread
    /// (<see cref="ReplicaUpdate{T}.Precompute"/>): while the server waits for the next worker's pack, not after the
    /// last one, when the workers wait for the parameters. <see cref="CompleteAsync"/> waits for them.
    /// </remarks>
    public abstract ValueTask AddAsync(int rank, double[] losses, TensorPayload pack);

    /// <summary>
    /// Checks every shard was added and returns the step's loss. With SGD the update is left pending
    /// (<see cref="ApplyPending"/>); otherwise the optimizer steps the parameters now, in parts on
    /// the compute threads at once (element-wise, so the same bits): the workers wait for them.
    /// </summary>
    public abstract ValueTask<double> CompleteAsync(int step);

    /// <summary>Applies a pending SGD update to the parameters (nothing when none is pending).</summary>
    public abstract void ApplyPending();

    /// <summary>
    /// Whether the workers may compute on these parameters in place, as a <see cref="StepTeam"/> does: the server
    /// holds them (unsharded) and no layer is factored, so the update is the gradient element by element and
    /// its parts can be added up and stepped on several threads at once, every element getting the operations
    /// it gets here on one thread (the same bits).
    /// </summary>
    public abstract bool SharesParameters { get; }

    /// <summary>
    /// A team's step, part by part (<see cref="SharesParameters"/>): <see cref="BeginShared"/>, then every
    /// <see cref="ReduceAndStepPart"/> (any threads, any order) and, on one thread meanwhile, <see cref="AcceptShared"/>:
    /// the optimizer steps the parameters at once, so nothing is left pending. How many parts there are.
    /// </summary>
    public abstract int SharedParts { get; }

    /// <summary>
    /// Adds part <paramref name="part"/> of every worker's pack (rank order within the part) into the step's update,
    /// then steps that part of the parameters (and its optimizer state) on it, while its values are in the cache:
    /// element-wise, so the bits of adding every part before stepping any.
    /// </summary>
    public abstract void ReduceAndStepPart(TensorPayload[] packs, int step, int part);

    /// <summary>Records every worker's blocks' losses in rank order and returns the step's loss.</summary>
    public abstract double AcceptShared(int step, double[][] losses);

    /// <summary>Steps part <paramref name="part"/> of the parameters (and its optimizer state) on the step's gradient.</summary>
    public abstract void StepPart(int step, int part);

    /// <summary>Writes the parameters after the steps done, widened to float64, into <paramref name="to"/> (a pending SGD update applied first); unsharded only.</summary>
    public abstract void CopyParameters(Span<double> to);

    /// <summary>
    /// A float64 copy of the parameters and the optimizer state (checkpoints, final weights); unsharded only.
    /// <paramref name="handOver"/>: the job's final state, after which this server takes no step: float64
    /// parameters and state slots are its own buffers rather than copies (float32 ones are let go once widened).
    /// </summary>
    public abstract ModelState ModelState(bool handOver = false);

    /// <summary>
    /// The parameter ranges of the job's parameter-server shards (<see cref="TrainingSpec.ResolvedParameterServerShards"/>).
    /// With more than one, the shards own the parameters and the optimizer state, step their ranges and
    /// offer them to the workers; this server holds neither, and only builds the step's gradient.
    /// </summary>
    public abstract IReadOnlyList<Shard> Ranges { get; }

    public bool Sharded => Ranges.Count > 1;

    /// <summary>Sharded: the full-batch gradient of the completed step, built now (a compute thread's work).</summary>
    public abstract void BuildGradient();

    /// <summary>Sharded: range <paramref name="shard"/> of the gradient, in a buffer of that shard's own that stays unchanged until the next step.</summary>
    public abstract TensorPayload GradientRange(int shard);

    /// <summary>
    /// Sharded: puts a chunk of shard <paramref name="shard"/>'s model state (job precision: its parameters, or with
    /// <paramref name="slots"/> its range of each state slot one after another) into its places in a float64 model state's
    /// tensors, which <paramref name="tensor"/> gives (<see cref="Into"/>: tensors the caller allocated and no one reads yet).
    /// </summary>
    public abstract void PlaceState(StateTensor tensor, int shard, bool slots, TensorChunk chunk);

    /// <summary>Tensor <paramref name="part"/> of a float64 model state being assembled: 0 the parameters, then each state slot.</summary>
    public delegate Span<double> StateTensor(int part);

    /// <summary>The tensors of <paramref name="modelState"/>, to assemble it in place (see <see cref="AllocateState"/>).</summary>
    public static StateTensor Into(ModelState modelState) => part => Writable(part == 0 ? modelState.Parameters : modelState.Slots[part - 1]);

    /// <summary>
    /// Sharded: what a shard of <paramref name="range"/> loads from a float64 model state: its range of the
    /// parameters, then its range of each state slot; parameters alone when the model state has no state
    /// (step 0: the shard starts from zero, and no zeros travel).
    /// </summary>
    public static TensorPayload RangeOf(ModelState modelState, Shard range)
    {
        var tensors = modelState.Tensors.ToArray();
        var payload = TensorPayload.Allocate<double>(checked(tensors.Length * range.Count), out var to);
        for (int part = 0; part < tensors.Length; part++)
            tensors[part].Values.Slice(range.Start, range.Count).CopyTo(to.Slice(part * range.Count, range.Count));
        return payload;
    }

    /// <summary>A float64 model state's tensors allocated for the parameters and <paramref name="slots"/> state slots, to be filled.</summary>
    public static ModelState AllocateState(int count, int slots) =>
        new(TensorPayload.Allocate<double>(count, out Span<double> _), [.. Enumerable.Range(0, slots).Select(_ => TensorPayload.Allocate<double>(count, out Span<double> _))]);

    // The float64 values of a tensor being filled (AllocateState's): nothing reads it before it is whole.
    private static Span<double> Writable(TensorPayload tensor) => MemoryMarshal.Cast<byte, double>(tensor.Bytes.AsSpan());

    public static ServerModel Create(TrainingSpec spec, ExchangePlan plan, ComputeScheduler compute) => spec.Precision switch
    {
        Precision.Float32 => new Typed<float>(spec, plan, compute),
        _ => new Typed<double>(spec, plan, compute),
    };

    // Packs below this many values are added on one thread: a hop to a compute thread costs more.
    private const int PartValues = 1 << 15;
    private const int PartsPerThread = 4;

    /// <summary>
    /// Parts of one optimizer step, each claimed by the first thread to ask, so a compute thread that
    /// is slow to wake (other processes hold the cores) leaves its share to the threads already running
    /// instead of holding up the step: the step ends when every part is done, not every thread.
    /// Element-wise, so which thread steps a part changes no bit.
    /// </summary>
    private sealed class PartClaims(int parts, Action<int> stepPart)
    {
        private int _next = -1, _done;
        private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Completed => _completed.Task;

        /// <summary>Steps parts until none is left unclaimed; a thread that comes late finds none and returns.</summary>
        public void StepClaimed()
        {
            int part;
            while ((part = Interlocked.Increment(ref _next)) < parts)
            {
                try
                {
                    stepPart(part);
                }
                catch (Exception e)
                {
                    _completed.TrySetException(e);
                    return;
                }
                if (Interlocked.Increment(ref _done) == parts) _completed.TrySetResult();
            }
        }
    }

    private sealed class Typed<T>(TrainingSpec spec, ExchangePlan plan, ComputeScheduler compute) : ServerModel where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly BatchSchedule _schedule = spec.Schedule();
        private readonly PerBatchSize<Shape> _shapes = new(spec.Schedule(), size => new Shape(spec, plan.ForBatch(size)));
        private readonly int _count = plan.Layout.Count;
        private readonly int _slots = spec.Optimizer.StateSlots;
        private readonly Shard[] _ranges = Shard.Split(plan.Layout.Count, spec.ResolvedParameterServerShards());
        // Unsharded only: sharded, the shards hold the parameters.
        private readonly TensorPayload? _parameters = spec.ResolvedParameterServerShards() > 1 ? null : new(LargeArrays.New<byte>(plan.Layout.Count * System.Runtime.CompilerServices.Unsafe.SizeOf<T>()));
        // Unsharded: the optimizer state, each slot a tensor of the model's length (float64: handed over whole as the
        // job's final state); the optimizer steps a part's range of each. Sharded: the shards hold it, and this server
        // the step's gradient and each shard's range of it.
        // More parts than threads, claimed by whichever thread is free (StepAsync, a step team's threads): small
        // enough that every thread gets a few (one that finishes its compute late still finds parts left), large
        // enough that claiming one costs nothing next to stepping it. A step team adds its packs up in as many parts.
        private readonly Shard[] _parts = Shard.Split(plan.Layout.Count,
            Math.Clamp(plan.Layout.Count / (1 << 13), 1, PartsPerThread * Math.Max(compute.MaximumConcurrencyLevel, spec.Workers)));
        private TensorPayload[]? _stateSlots;
        private readonly Optimizer<T> _optimizer = Optimizer<T>.For(spec);
        private T[]? _gradient;
        private TensorPayload[]? _gradientRanges;
        // The data's rows (a factored first layer reads their inputs): without mini-batches the batch's
        // inputs are held in T; with them, a mini-batch's are read for the step being applied.
        private ISampleRows? _rows;
        private T[] _inputs = [];
        private readonly T[] _batchInputs = spec.MiniBatches && plan.NeedsBatchInputs ? new T[spec.Batch * spec.Model.InputSize] : [];
        // The step being built (begun: 0 once completed).
        private Shape _building = null!;
        private int _begun;
        // The step whose update the parameters still lack (SGD only; 0: none), and that update. The
        // next step's update is built into its ring's other buffer meanwhile, so the two never meet.
        private int _pending;
        private Shape _pendingShape = null!;
        private TensorPayload _pendingUpdate = TensorPayload.Empty;
        // Sharded: the step whose gradient BuildGradient builds.
        private int _sharded;
        // The step whose batch inputs _batchInputs holds (0: none), and the products of the workers' factors being
        // multiplied out as their packs came in (AddAsync), which the step's gradient waits for.
        private int _gathered;
        private readonly List<Task> _precomputing = [];
        // At most this much memory for them (one product of each factored layer per block): a model whose factored
        // layers are large multiplies them out when the step completes instead, as a sharded server always does.
        private const long MaxPrecomputedBytes = 64L << 20;

        public override bool CachesFollowUpdates => CachesFollowUpdatesOf(spec);

        public override IReadOnlyList<Shard> Ranges => _ranges;

        public override TensorPayload Parameters => _pending == 0 ? Unsharded
            : throw new InvalidOperationException($"The parameters lack step {_pending}'s update; apply it first.");

        // The last completed step's update (what the workers are sent) stays in _pendingUpdate after it was applied.
        public override TensorPayload Update => _pendingShape is not null ? _pendingUpdate : throw new InvalidOperationException("No step has completed on this server.");

        private TensorPayload Unsharded => _parameters ?? throw new InvalidOperationException("A sharded parameter server holds no parameters: its shards offer them.");

        private Span<T> Values => MemoryMarshal.Cast<byte, T>(Unsharded.Bytes.AsSpan());

        public override void Load(ModelState? modelState, int stepsCompleted, ISampleRows? inputs)
        {
            SettlePrecomputes();
            var slots = modelState?.Slots ?? [];
            if (modelState is null && Sharded)
                throw new InvalidOperationException("A sharded parameter server holds no parameters to draw: its shards load theirs.");
            if (modelState is not null && (modelState.Parameters.Length != _count || (slots.Length != 0 && slots.Length != _slots) || slots.Any(slot => slot.Length != _count)))
                throw new InvalidOperationException($"The model state has {modelState.Parameters.Length} parameters and {slots.Length} state slots of {string.Join(", ", slots.Select(slot => slot.Length))} values; "
                    + $"the model has {_count} parameters and the optimizer {_slots} state slots of as many.");
            if (modelState is null) Initializer.Fill(ParameterLayout.For(spec.Model), spec.Init, spec.Seed, Values);
            else if (!Sharded) Precisions.Narrow<T>(modelState.Parameters.Values, Values);
            if (!Sharded && _slots > 0)
            {
                _stateSlots ??= [.. Enumerable.Range(0, _slots).Select(_ => new TensorPayload(LargeArrays.New<byte>(_count * Size)))];
                for (int slot = 0; slot < _slots; slot++)
                {
                    var target = Slot(slot);
                    if (slots.Length == 0) target.Clear();
                    else Precisions.Narrow<T>(slots[slot].Values, target);
                }
            }
            if (plan.NeedsBatchInputs)
            {
                _rows = inputs ?? throw new InvalidOperationException("The plan factors the first layer: the parameter server needs the batch's inputs.");
                // Uploaded rows arrive as float64: a float32 job keeps them narrowed once, as its workers do.
                if (typeof(T) == typeof(float) && spec.MiniBatches && inputs is Dataset uploaded) _rows = new Float32Rows(uploaded);
                _inputs = spec.MiniBatches ? [] : inputs.ToArrays<T>().X;
            }
            _pending = 0;
            _gathered = 0;
        }

        public override void Begin(int step) => Begin(step, swap: true);

        // NOTE: a message may still be reading the buffer of the step before (an SGD update sent to the workers
        // with the next request); a team's step has no reader but the team, which stepped on it already.
        public override void BeginShared(int step) => Begin(step, swap: false);

        private void Begin(int step, bool swap)
        {
            // Begun again after a failure part-way: products of the attempt before are not this attempt's.
            SettlePrecomputes();
            // Begun again after a failure part-way (a run over links broke): the step starts over in the same buffer,
            // and the completed step's update stays where it is.
            if (_begun != step)
            {
                _building = _shapes.For(step);
                if (swap) _building.Ring.Swap();
                _begun = step;
            }
            _building.Builder.Reset();
        }

        public override async ValueTask AddAsync(int rank, double[] losses, TensorPayload pack)
        {
            var shape = _building;
            int parts = Math.Clamp(shape.Builder.ShardLength(rank) / PartValues, 1, compute.MaximumConcurrencyLevel);
            if (parts == 1)
            {
                shape.Builder.Add(rank, losses, Pack(shape, rank, pack), shape.Ring.Current);
                Precompute(shape, rank, pack);
                return;
            }
            var others = new Task[parts - 1];
            for (int part = 1; part < parts; part++)
            {
                int which = part;
                others[part - 1] = compute.Run(() => shape.Builder.AddPart(rank, Pack(shape, rank, pack), shape.Ring.Current, which, parts));
            }
            shape.Builder.AddPart(rank, Pack(shape, rank, pack), shape.Ring.Current, 0, parts);
            await Task.WhenAll(others);
            shape.Builder.Accept(rank, losses);
            Precompute(shape, rank, pack);
        }

        /// <summary>Starts multiplying out worker <paramref name="rank"/>'s factors on a compute thread, when it pays (see <see cref="AddAsync"/>).</summary>
        private void Precompute(Shape shape, int rank, TensorPayload pack)
        {
            if (!shape.Plan.AnyFactored || CachesFollowUpdates || Sharded || shape.Replica.PrecomputedBytes > MaxPrecomputedBytes) return;
            var inputs = BatchInputs(_begun);
            // One after another: a replica's partial sums go through scratch buffers of its own.
            var previous = _precomputing.Count > 0 ? _precomputing[^1] : Task.CompletedTask;
            _precomputing.Add(previous.ContinueWith(
                done => { done.GetAwaiter().GetResult(); shape.Replica.PrecomputeFromBatch(rank, Pack(shape, rank, pack), inputs.Span); },
                CancellationToken.None, TaskContinuationOptions.None, compute));
        }

        /// <summary>Waits for any products still being multiplied out and forgets them (a step begun again, a new state).</summary>
        private void SettlePrecomputes()
        {
            if (_precomputing.Count > 0)
            {
                // Their step is abandoned: a failure among them is that step's, not the next one's.
                try { Task.WaitAll([.. _precomputing]); } catch (AggregateException) { }
                _precomputing.Clear();
            }
            // Also after a step whose completion failed waiting for them (some may have finished).
            foreach (var shape in _shapes.All) shape.Replica.DiscardPrecomputed();
        }

        private static ReadOnlySpan<T> Pack(Shape shape, int rank, TensorPayload pack) => pack.ValuesOf<T>(shape.Builder.ShardLength(rank), $"the gradient pack of worker {rank}");

        public override async ValueTask<double> CompleteAsync(int step)
        {
            if (_pending != 0) throw new InvalidOperationException($"Step {_pending}'s update was never applied.");
            double loss = _building.Builder.Complete();
            _begun = 0;
            _pendingUpdate = _building.Ring.CurrentPayload;
            _pendingShape = _building;
            // Sharded, the shards step the parameters (BuildGradient reads the update); with SGD it is pending here.
            if (Sharded)
            {
                _sharded = step;
                return loss;
            }
            if (CachesFollowUpdates)
            {
                _pending = step;
                return loss;
            }
            await StepAsync(step);
            return loss;
        }

        /// <summary>
        /// An optimizer with state steps the parameters on the step's gradient at once (the workers wait
        /// for the new parameters, so nothing else runs), its parts on this thread and the compute threads
        /// together. A dense-only update is the gradient element by element: each part then builds its
        /// own range of it first, so no pass over the whole model is left to one thread.
        /// </summary>
        private async ValueTask StepAsync(int step)
        {
            var replica = _pendingShape.Replica;
            if (_precomputing.Count > 0)
            {
                var products = _precomputing.ToArray();
                _precomputing.Clear();
                await Task.WhenAll(products);
            }
            if (!replica.ElementWise) replica.Gradient(PendingUpdate, BatchInputs(step).Span, _gradient ??= LargeArrays.New<T>(_count));
            int parts = _parts.Length;
            if (parts == 1)
            {
                StepPart(step, 0);
                return;
            }
            var run = new PartClaims(parts, part => StepPart(step, part));
            // This thread and (MaximumConcurrencyLevel − 1) compute threads: as many as the cores the scheduler was given.
            for (int helper = 1; helper < Math.Min(parts, compute.MaximumConcurrencyLevel); helper++)
                _ = compute.Run(run.StepClaimed);
            run.StepClaimed();
            await run.Completed;
        }

        public override void StepPart(int step, int part) => StepPart(step, part, _pendingShape, MemoryMarshal.Cast<byte, T>(_pendingUpdate.Bytes.AsSpan()));

        /// <summary>Steps part <paramref name="part"/> on the gradient of <paramref name="update"/>, the update of a step of <paramref name="shape"/>'s batch size.</summary>
        private void StepPart(int step, int part, Shape shape, Span<T> update)
        {
            var range = _parts[part];
            var replica = shape.Replica;
            Span<T> gradient;
            if (replica.ElementWise)
            {
                // The step's update, laid out like the parameters, becomes its gradient in place (the loss's scale
                // applied, element by element): no model-sized gradient buffer. Nothing reads the update after its
                // step: with these steps the workers are sent parameters, or compute at the server's in a team.
                replica.GradientRange(update, range, update);
                gradient = update.Slice(range.Start, range.Count);
            }
            else gradient = _gradient!.AsSpan(range.Start, range.Count);
            _optimizer.Step(step, Values.Slice(range.Start, range.Count), gradient,
                _slots > 0 ? Slot(0).Slice(range.Start, range.Count) : [], _slots > 1 ? Slot(1).Slice(range.Start, range.Count) : []);
        }

        // Optimizer-state slot k's values (unsharded, after Load).
        private Span<T> Slot(int k) => MemoryMarshal.Cast<byte, T>(_stateSlots![k].Bytes.AsSpan());

        private ReadOnlySpan<T> PendingUpdate => MemoryMarshal.Cast<byte, T>(_pendingUpdate.Bytes.AsSpan());

        public override void BuildGradient()
        {
            _gradient ??= LargeArrays.New<T>(_count);
            _pendingShape.Replica.Gradient(PendingUpdate, BatchInputs(_sharded).Span, _gradient);
        }

        public override TensorPayload GradientRange(int shard)
        {
            var range = _ranges[shard];
            _gradientRanges ??= [.. _ranges.Select(r => new TensorPayload(LargeArrays.New<byte>(r.Count * System.Runtime.CompilerServices.Unsafe.SizeOf<T>())))];
            var payload = _gradientRanges[shard];
            _gradient.AsSpan(range.Start, range.Count).CopyTo(MemoryMarshal.Cast<byte, T>(payload.Bytes.AsSpan()));
            return payload;
        }

        public override void PlaceState(StateTensor tensor, int shard, bool slots, TensorChunk chunk)
        {
            var range = _ranges[shard];
            int parts = slots ? _slots : 1;
            CheckChunk(chunk, parts * range.Count, $"parameter-server shard {shard}'s {(slots ? "optimizer state" : "parameters")}");
            var values = MemoryMarshal.Cast<byte, T>(chunk.Bytes.AsSpan());
            // Element e of the chunk's tensor is element e mod n of part e / n (n: the range's count), whose place is part's range in the model state.
            long first = chunk.Offset / Size;
            for (int done = 0; done < values.Length;)
            {
                long e = first + done;
                int part = (slots ? 1 : 0) + (int)(e / range.Count), within = (int)(e % range.Count);
                int take = Math.Min(values.Length - done, range.Count - within);
                Precisions.Widen<T>(values.Slice(done, take), tensor(part).Slice(range.Start + within, take));
                done += take;
            }
        }

        private static int Size => System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

        /// <summary>A chunk of a tensor of <paramref name="count"/> T values, whole values only.</summary>
        private static void CheckChunk(TensorChunk chunk, long count, string what)
        {
            if (chunk.TotalBytes != count * Size || chunk.Offset % Size != 0 || chunk.Bytes.Length % Size != 0)
                throw new InvalidOperationException(
                    $"{what}: a chunk of bytes [{chunk.Offset}, {chunk.Offset + chunk.Bytes.Length}) of {chunk.TotalBytes}, expected whole {typeof(T).Name} values of {count * Size} bytes; do both ends agree on the job's precision?");
        }

        public override void ApplyPending()
        {
            if (_pending == 0) return;
            _pendingShape.Replica.Apply(_pending, PendingUpdate, BatchInputs(_pending).Span, Values, []);
            _pending = 0;
        }

        public override bool SharesParameters => !Sharded && !plan.AnyFactored;

        public override int SharedParts => _parts.Length;

        // The team's packs (one array for the team's life) and the delegate that reads them, made once: no allocation per step.
        private TensorPayload[] _teamPacks = [];
        private UpdateBuilder<T>.PackOf? _teamPack;

        public override void ReduceAndStepPart(TensorPayload[] packs, int step, int part)
        {
            // The step being built, not the pending one: AcceptShared, which makes it pending, may not have run yet.
            var shape = _building;
            _teamPacks = packs;
            _teamPack ??= rank => Pack(_building, rank, _teamPacks[rank]);
            var range = _parts[part];
            shape.Builder.AddRangeOfEach(_teamPack, shape.Ring.Current, range.Start, range.Count);
            StepPart(step, part, shape, shape.Ring.Current);
        }

        public override double AcceptShared(int step, double[][] losses)
        {
            if (_pending != 0) throw new InvalidOperationException($"Step {_pending}'s update was never applied.");
            if (_begun != step) throw new InvalidOperationException($"Step {step} was not begun (step {_begun} is).");
            for (int rank = 0; rank < losses.Length; rank++) _building.Builder.Accept(rank, losses[rank]);
            double loss = _building.Builder.Complete();
            _begun = 0;
            _pendingUpdate = _building.Ring.CurrentPayload;
            _pendingShape = _building;
            return loss;
        }

        public override void CopyParameters(Span<double> to)
        {
            ApplyPending();
            Precisions.Widen<T>(Values, to);
        }

        public override ModelState ModelState(bool handOver = false)
        {
            if (Sharded) throw new InvalidOperationException("A sharded parameter server's state is on its shards; assemble it from theirs.");
            var parameters = Parameters;
            if (!handOver || typeof(T) != typeof(double))
            {
                parameters = TensorPayload.Allocate<double>(_count, out var widened);
                Precisions.Widen<T>(MemoryMarshal.Cast<byte, T>(Parameters.Bytes.AsSpan()), widened);
            }
            var slots = new TensorPayload[_stateSlots?.Length ?? 0];
            for (int k = 0; k < slots.Length; k++)
            {
                if (handOver && typeof(T) == typeof(double)) slots[k] = _stateSlots![k];
                else
                {
                    slots[k] = TensorPayload.Allocate<double>(_count, out var widened);
                    Precisions.Widen<T>(Slot(k), widened);
                    if (handOver) _stateSlots![k] = TensorPayload.Empty;
                }
            }
            var state = new ModelState(parameters, slots);
            if (handOver) _stateSlots = null;
            return state;
        }

        /// <summary>
        /// Step <paramref name="step"/>'s whole batch's inputs (a factored first layer's product reads them; else empty),
        /// gathered once per step: the workers' products being multiplied out read them while the step is built.
        /// </summary>
        private ReadOnlyMemory<T> BatchInputs(int step)
        {
            if (!plan.NeedsBatchInputs) return ReadOnlyMemory<T>.Empty;
            if (!spec.MiniBatches) return _inputs;
            var batch = _batchInputs.AsMemory(0, _schedule.SizeOf(step) * spec.Model.InputSize);
            if (_gathered != step)
            {
                _schedule.Gather(step, _rows!, 0, batch.Span, Span<T>.Empty);
                _gathered = step;
            }
            return batch;
        }

        /// <summary>
        /// What a step of one batch size works with: its plan, the builder and the update's code, and
        /// the update buffers (step s's update is sent with step s + 1 and read by every worker before
        /// it answers; step s + 1's is written into the other buffer, so nothing is allocated per step).
        /// </summary>
        private sealed class Shape(TrainingSpec spec, ExchangePlan plan)
        {
            public ExchangePlan Plan => plan;
            public UpdateBuilder<T> Builder { get; } = new(spec, plan);
            public ReplicaUpdate<T> Replica { get; } = new(spec, plan);
            public PayloadRing<T> Ring { get; } = new(plan.Update.Length);
        }
    }
}
