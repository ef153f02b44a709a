using Orleans.Runtime;
using Orleans.Storage;

namespace Trainer.Grains;

internal static class PersistentStateExtensions
{
    /// <summary>
    /// Writes <paramref name="value"/> as state <paramref name="name"/> of <paramref name="grain"/>,
    /// whose sole writer the caller is: when <paramref name="etag"/> is stale (written before, by an
    /// earlier activation or write), takes the stored ETag and writes again. Returns the new ETag.
    /// </summary>
    public static async Task<string?> OverwriteAsync<T>(this IGrainStorage storage, string name, GrainId grain, T value, string? etag)
    {
        var state = new GrainState<T>(value) { ETag = etag };
        try
        {
            await storage.WriteStateAsync(name, grain, state);
        }
        catch (InconsistentStateException)
        {
            await storage.ReadStateAsync(name, grain, state);
            state.State = value;
            await storage.WriteStateAsync(name, grain, state);
        }
        return state.ETag;
    }

    /// <summary>
    /// Writes the state; if storage says our copy is stale because storage itself lost the record
    /// (memory storage whose silo died comes back empty), rewrites it from this activation's copy,
    /// which is the authoritative one: only the owning grain writes its record.
    /// </summary>
    public static async Task WriteOwnedStateAsync<T>(this IPersistentState<T> state)
    {
        try
        {
            await state.WriteStateAsync();
        }
        catch (InconsistentStateException)
        {
            var mine = state.State;
            await state.ReadStateAsync();
            state.State = mine;
            await state.WriteStateAsync();
        }
    }
}
