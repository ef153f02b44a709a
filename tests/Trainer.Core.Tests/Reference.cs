using Trainer.Core.Data;

namespace Trainer.Core.Tests;

/// <summary>Files under tests/reference, copied next to the test assembly as reference/**.</summary>
internal static class Reference
{
    public static string PathOf(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "reference", .. parts]);

    public static NpyArray ReadNpy(params string[] parts)
    {
        var path = PathOf(parts);
        using var stream = File.OpenRead(path);
        return Npy.Read(stream, path);
    }
}
