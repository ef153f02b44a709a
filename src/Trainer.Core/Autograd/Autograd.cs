namespace Trainer.Core.Autograd;

/// <summary>
/// The reverse-mode engine and its functional API, with PyTorch's semantics
/// (<c>torch.autograd.grad</c>, <c>Tensor.backward</c>, <c>torch.no_grad</c>).
/// </summary>
/// <remarks>
/// One pass = a topological sort of the graph behind the outputs, then one loop in reverse
/// order that hands each node the sum of its consumers' gradients and runs its rule.
/// <list type="bullet">
/// <item>retainGraph (default = createGraph): without it every node the pass ran is freed, and a
/// second pass through it throws. Leaves are never freed.</item>
/// <item>createGraph: the rules run with gradients enabled, so the gradients they return are
/// graph tensors themselves and can be differentiated again (double backward, Hessian-vector
/// products). Without it the rules run under <see cref="NoGrad"/>: same maths, no graph, faster.</item>
/// </list>
/// NOTE: code inside a namespace <c>Trainer.Core.*</c> sees the namespace <c>Trainer.Core.Autograd</c>
/// before this class; put <c>using Trainer.Core.Autograd;</c> inside the namespace declaration there.
/// </remarks>
public static class Autograd
{
    // NOTE: per thread, like PyTorch's grad mode. The core is synchronous, so a NoGrad scope can
    // never span an await and leak into another grain's turn on the same thread.
    [ThreadStatic] private static bool _gradDisabled;

    /// <summary>Most inputs any op has (binary ops have two).</summary>
    internal const int MaxParents = 2;

    /// <summary>False inside a <see cref="NoGrad"/> scope: ops then build no graph.</summary>
    public static bool IsGradEnabled => !_gradDisabled;

    /// <summary>Turns graph building off until the returned scope is disposed (<c>using (Autograd.NoGrad()) { ... }</c>).</summary>
    public static GradModeScope NoGrad() => new(enabled: false);

    /// <summary>Turns graph building on until the returned scope is disposed.</summary>
    public static GradModeScope EnableGrad() => new(enabled: true);

    /// <summary>Restores the previous grad mode when disposed.</summary>
    public readonly struct GradModeScope : IDisposable
    {
        private readonly bool _previouslyDisabled;

        internal GradModeScope(bool enabled)
        {
            _previouslyDisabled = _gradDisabled;
            _gradDisabled = !enabled;
        }

        public void Dispose() => _gradDisabled = _previouslyDisabled;
    }

    /// <summary>d output / d input for one scalar output (or a seeded non-scalar one). See the list overload.</summary>
    public static Tensor Grad(Tensor output, Tensor input, Tensor? gradOutput = null, bool? retainGraph = null, bool createGraph = false) =>
        Grad([output], [input], gradOutput is null ? null : [gradOutput], retainGraph, createGraph)[0]!;

    /// <summary>
    /// Returns Σ_k gradOutputs[k]ᵀ · d outputs[k] / d inputs[i] for each input, WITHOUT touching
    /// any <see cref="Tensor.Grad"/>. A scalar output's seed defaults to 1; other outputs need one.
    /// An input the outputs do not depend on is an error unless <paramref name="allowUnused"/>,
    /// in which case its gradient is null.
    /// </summary>
    public static Tensor?[] Grad(IReadOnlyList<Tensor> outputs, IReadOnlyList<Tensor> inputs, IReadOnlyList<Tensor?>? gradOutputs = null,
        bool? retainGraph = null, bool createGraph = false, bool allowUnused = false)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        for (int i = 0; i < inputs.Count; i++)
            if (!inputs[i].RequiresGrad)
                throw new InvalidOperationException(
                    $"One of the differentiated tensors does not require grad: inputs[{i}] (shape {inputs[i].Shape}). " +
                    "Create it with requiresGrad: true (or call RequireGrad() on it) before building the graph, or leave it out of inputs.");
        return Run(outputs, gradOutputs, inputs, retainGraph ?? createGraph, createGraph, allowUnused);
    }

    /// <summary>
    /// The engine. With <paramref name="inputs"/> it returns their gradients; without, it adds
    /// the gradients of every reachable leaf that requires grad into its <see cref="Tensor.Grad"/>.
    /// </summary>
    internal static Tensor?[] Run(IReadOnlyList<Tensor> outputs, IReadOnlyList<Tensor?>? gradOutputs, IReadOnlyList<Tensor>? inputs,
        bool retainGraph, bool createGraph, bool allowUnused)
    {
        var seeds = Seeds(outputs, gradOutputs);
        var order = TopologicalOrder(outputs);
        var targets = inputs is null ? null : new HashSet<Tensor>(inputs, ReferenceEqualityComparer.Instance);
        var needed = Needed(order, targets);

        var grads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        using var mode = createGraph ? EnableGrad() : NoGrad();
        for (int k = 0; k < outputs.Count; k++) Accumulate(grads, outputs[k], seeds[k]);

        // The reverse loop: every consumer of a node comes later in `order`, so when we reach a
        // node its gradient is complete.
        Span<bool> needsBuffer = stackalloc bool[MaxParents];
        for (int n = order.Count - 1; n >= 0; n--)
        {
            var node = order[n];
            if (!needed.Contains(node) || !grads.TryGetValue(node, out var grad)) continue;
            if (node.IsLeaf)
            {
                if (targets is null) node.Grad = node.Grad is null ? grad : node.Grad + grad;
                continue;
            }
            var parents = node.Parents;
            var needs = needsBuffer[..parents.Length];
            bool any = false;
            for (int i = 0; i < parents.Length; i++) any |= needs[i] = parents[i].RequiresGrad && needed.Contains(parents[i]);
            if (!any) continue;
            var parentGrads = node.RunBackward(grad, needs);
            if (!retainGraph) node.Free();
            for (int i = 0; i < parents.Length; i++)
                if (needs[i] && parentGrads[i] is { } g) Accumulate(grads, parents[i], g);
        }

        if (inputs is null) return [];
        var result = new Tensor?[inputs.Count];
        for (int i = 0; i < inputs.Count; i++)
        {
            result[i] = grads.GetValueOrDefault(inputs[i]);
            if (result[i] is null && !allowUnused)
                throw new InvalidOperationException(
                    $"One of the differentiated tensors appears to not have been used in the graph: inputs[{i}] (shape {inputs[i].Shape}). " +
                    "Pass allowUnused: true if this is intended (its gradient is then null).");
        }
        return result;
    }

    private static Tensor[] Seeds(IReadOnlyList<Tensor> outputs, IReadOnlyList<Tensor?>? gradOutputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        if (outputs.Count == 0) throw new ArgumentException("Autograd needs at least one output to differentiate.", nameof(outputs));
        if (gradOutputs is not null && gradOutputs.Count != outputs.Count)
            throw new ArgumentException($"gradOutputs has {gradOutputs.Count} entries but there are {outputs.Count} outputs; give one seed per output (null for scalars).", nameof(gradOutputs));
        var seeds = new Tensor[outputs.Count];
        for (int k = 0; k < outputs.Count; k++)
        {
            var output = outputs[k];
            if (!output.RequiresGrad)
                throw new InvalidOperationException(
                    $"outputs[{k}] does not require grad and has no grad function: nothing it was computed from requires grad " +
                    "(or it was computed under Autograd.NoGrad()). Create the inputs with requiresGrad: true.");
            var seed = gradOutputs?[k];
            if (seed is null)
            {
                if (output.Size != 1)
                    throw new InvalidOperationException(
                        $"grad can be implicitly created only for scalar outputs; outputs[{k}] has shape {output.Shape}. " +
                        "Reduce it to a scalar first (e.g. Sum()), or pass a seed gradient of the same shape (gradOutputs, or Backward(gradient)).");
                seed = Tensor.Ones(output.Shape);
            }
            else if (seed.Shape != output.Shape)
                throw new ArgumentException($"Mismatch in shape: the seed gradient for outputs[{k}] has shape {seed.Shape} and the output has shape {output.Shape}.");
            seeds[k] = seed;
        }
        return seeds;
    }

    /// <summary>Every node behind the outputs that requires grad, each after all of its parents (iterative DFS, so deep graphs cannot overflow the stack).</summary>
    private static List<Tensor> TopologicalOrder(IReadOnlyList<Tensor> outputs)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor Node, int NextParent)>();
        foreach (var output in outputs)
        {
            if (!output.RequiresGrad || !visited.Add(output)) continue;
            stack.Push((output, 0));
            while (stack.Count > 0)
            {
                var (node, next) = stack.Pop();
                if (next < node.Parents.Length)
                {
                    stack.Push((node, next + 1));
                    var parent = node.Parents[next];
                    if (parent.RequiresGrad && visited.Add(parent)) stack.Push((parent, 0));
                }
                else order.Add(node);
            }
        }
        return order;
    }

    /// <summary>
    /// Nodes through which a gradient reaches a target (the inputs, or any leaf). Walking only
    /// these keeps grad(loss, x) from also paying for the weight gradients, and vice versa.
    /// </summary>
    private static HashSet<Tensor> Needed(List<Tensor> order, HashSet<Tensor>? targets)
    {
        var needed = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var node in order)   // parents first, so their answer is known
        {
            bool isTarget = targets is null ? node.IsLeaf : targets.Contains(node);
            bool reaches = isTarget;
            foreach (var p in node.Parents) reaches |= needed.Contains(p);
            if (reaches) needed.Add(node);
        }
        return needed;
    }

    private static void Accumulate(Dictionary<Tensor, Tensor> grads, Tensor node, Tensor grad)
    {
        if (grad.Shape != node.Shape)   // a broken rule, not a user error
            throw new InvalidOperationException($"Internal error: the rule of a consumer of '{node.Op}' produced a gradient of shape {grad.Shape} for a tensor of shape {node.Shape}.");
        grads[node] = grads.TryGetValue(node, out var sum) ? sum + grad : grad;
    }
}
