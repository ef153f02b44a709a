namespace Trainer.Dashboard;

/// <summary>
/// The page at GET /: one self-contained HTML file (vanilla JS, canvas charts, no external
/// resources: the machines it runs on may have no internet) that polls the JSON API.
/// </summary>
public static class DashboardPage
{
    public static string Html { get; } = Load();

    private static string Load()
    {
        using var stream = typeof(DashboardPage).Assembly.GetManifestResourceStream("Trainer.Dashboard.index.html")
            ?? throw new InvalidOperationException("Trainer.Dashboard.index.html is not embedded in the assembly (see Trainer.Dashboard.csproj).");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
