namespace Trainer.Core.Autograd;

/// <summary>
/// Recycles the output arrays of matrix products from one training step to the next, so a
/// model's steady-state step does not allocate its large buffers (the seed's 100x1000 weight
/// gradient alone is 800 KB; fresh large arrays every step cost a full GC every few steps).
/// </summary>
/// <remarks>
/// NOTE: <see cref="ReleaseAll"/> hands every array back at once, so the owner must know that no
/// tensor built with these buffers is still alive: a model that keeps its graph private and
/// returns only numbers (<see cref="AutogradMlp"/>). Never share one instance between threads.
/// </remarks>
internal sealed class StepBuffers
{
    private readonly Dictionary<int, Stack<double[]>> _free = [];
    private readonly List<double[]> _inUse = [];

    /// <summary>An array of exactly <paramref name="size"/> elements with undefined contents.</summary>
    public double[] Rent(int size)
    {
        var array = _free.TryGetValue(size, out var stack) && stack.Count > 0 ? stack.Pop() : GC.AllocateUninitializedArray<double>(size);
        _inUse.Add(array);
        return array;
    }

    /// <summary>Makes every rented array available again; the previous step's tensors must be dead.</summary>
    public void ReleaseAll()
    {
        foreach (var array in _inUse)
        {
            if (!_free.TryGetValue(array.Length, out var stack)) _free[array.Length] = stack = new Stack<double[]>();
            stack.Push(array);
        }
        _inUse.Clear();
    }
}
