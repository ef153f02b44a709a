namespace Trainer.Client;

internal enum PlotFormat { Png, Svg }

/// <summary>
/// Where a plot goes (`plot --out`, `train --plot`), checked before anything runs: the extension
/// picks the format (.png or .svg, any case), and the folder must exist.
/// </summary>
internal sealed record PlotFile(string Path, PlotFormat Format)
{
    public static PlotFile Parse(string field, string path) =>
        new(path, OutputFile.FormatOf(field, path, "allowed: a file name ending in .png or .svg", (".png", PlotFormat.Png), (".svg", PlotFormat.Svg)));
}
