using PuppeteerSharp;

namespace Trainer.Process.Tests;

/// <summary>
/// The machine's own chromium (Debian's package), driven by PuppeteerSharp; never a downloaded
/// browser (there is no internet here). Where it is not installed the page tests are skipped,
/// unless TRAINER_REQUIRE_CHROMIUM=1 (CI installs it), where that is a failure.
/// </summary>
public static class SystemChromium
{
    public const string Executable = "/usr/bin/chromium";

    public static Task<IBrowser> LaunchAsync()
    {
        if (!File.Exists(Executable))
        {
            if (Environment.GetEnvironmentVariable("TRAINER_REQUIRE_CHROMIUM") == "1")
                Assert.Fail($"{Executable} is not installed and TRAINER_REQUIRE_CHROMIUM=1 (apt-get install chromium).");
            Assert.Skip($"{Executable} is not installed (apt-get install chromium); set TRAINER_REQUIRE_CHROMIUM=1 to make this a failure.");
        }
        return Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = Executable,
            Browser = SupportedBrowser.Chromium,
            Headless = true,
            // --no-sandbox: CI runs as root, where chromium refuses its sandbox.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            DefaultViewport = new ViewPortOptions { Width = 1280, Height = 1200 },
        });
    }
}
