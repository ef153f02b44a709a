using Orleans.Runtime;
using Orleans.Storage;

namespace Trainer.Grains;

internal static class PersistentStateExtensions
{
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
