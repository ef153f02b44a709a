using Trainer.Core;

namespace Trainer.Client;

/// <summary>
/// A file a command will write (`plot --out`, `train --plot`, `predict --out`), checked before anything
/// runs: its extension, in any case, picks the format, and its folder must exist.
/// </summary>
internal static class OutputFile
{
    /// <param name="formats">Each allowed extension (".png") and the format it picks.</param>
    /// <param name="allowed">What to say when the extension is none of them: "allowed: ...".</param>
    public static TFormat FormatOf<TFormat>(string field, string path, string allowed, params (string Extension, TFormat Format)[] formats)
    {
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (!formats.Any(f => f.Extension == extension))
            throw new SpecException(field, path, allowed);
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null && !Directory.Exists(folder))
            throw new SpecException(field, path, $"its folder {folder} does not exist");
        return formats.First(f => f.Extension == extension).Format;
    }
}
