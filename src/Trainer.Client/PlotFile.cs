using Trainer.Core;

namespace Trainer.Client;

internal enum PlotFormat { Png, Svg }

/// <summary>
/// Where a plot goes (`plot --out`, `train --plot`), checked before anything runs: the extension
/// picks the format (.png or .svg, any case), and the folder must exist.
/// </summary>
internal sealed record PlotFile(string Path, PlotFormat Format)
{
    public static PlotFile Parse(string field, string path)
    {
        var format = System.IO.Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".png" => PlotFormat.Png,
            ".svg" => PlotFormat.Svg,
            _ => throw new SpecException(field, path, "allowed: a file name ending in .png or .svg"),
        };
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (folder is not null && !Directory.Exists(folder))
            throw new SpecException(field, path, $"its folder {folder} does not exist");
        return new PlotFile(path, format);
    }
}
