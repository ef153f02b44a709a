using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Trainer.Core;

namespace Trainer.Dashboard;

/// <summary>
/// Where a silo serves its web dashboard and who may read it, read from configuration:
/// <see cref="PortKey"/> (trainer-silo --dashboard-port; 0, the default, serves none),
/// <see cref="AddressKey"/> (--dashboard-address; default 127.0.0.1) and the access token, from
/// <see cref="TokenFileKey"/> (--dashboard-token-file) or <see cref="TokenKey"/> (--dashboard-token,
/// Trainer__DashboardToken). NOTE: the dashboard shows every job of the cluster, so it never listens
/// beyond loopback without a token: such settings are refused, not served open.
/// </summary>
/// <param name="Token">Every request must carry it; null: none needed (loopback only).</param>
public sealed record DashboardSettings(int Port, IPAddress Address, DashboardToken? Token = null)
{
    public const string PortKey = "Trainer:DashboardPort";
    public const string AddressKey = "Trainer:DashboardAddress";
    public const string TokenKey = "Trainer:DashboardToken";
    public const string TokenFileKey = "Trainer:DashboardTokenFile";

    public static readonly DashboardSettings Off = new(0, IPAddress.Loopback);

    public bool Enabled => Port != 0;

    /// <summary>The page's address over plain HTTP, e.g. http://127.0.0.1:8080/.</summary>
    public string Url => UrlFor(https: false);

    /// <summary>The page's address, e.g. https://0.0.0.0:8080/ (never with the token).</summary>
    public string UrlFor(bool https)
    {
        var host = Address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{Address}]" : Address.ToString();
        return $"{(https ? "https" : "http")}://{host}:{Port}/";
    }

    /// <summary>The settings in <paramref name="configuration"/>; throws <see cref="SpecException"/> naming the key, the value and what is allowed.</summary>
    public static DashboardSettings From(IConfiguration configuration) =>
        Parse(configuration[PortKey], configuration[AddressKey], configuration[TokenKey], configuration[TokenFileKey]);

    public static DashboardSettings Parse(string? port, string? address, string? token = null, string? tokenFile = null)
    {
        int parsedPort = 0;
        if (!string.IsNullOrWhiteSpace(port)
            && (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out parsedPort) || parsedPort > IPEndPoint.MaxPort))
            throw new SpecException(PortKey, port, "allowed: a TCP port from 1 to 65535, or 0 for no dashboard, e.g. --dashboard-port 8080");
        var parsedAddress = IPAddress.Loopback;
        if (!string.IsNullOrWhiteSpace(address) && !IPAddress.TryParse(address, out parsedAddress!))
            throw new SpecException(AddressKey, address,
                "allowed: an IP address of this machine, e.g. 127.0.0.1 (the default: this machine only) or 0.0.0.0 (every interface; then a token is required)");
        var parsedToken = ParseToken(token, tokenFile);
        if (parsedPort != 0 && parsedToken is null && !IPAddress.IsLoopback(parsedAddress))
            throw new SpecException(TokenKey, null,
                $"allowed: a token, required since the dashboard listens beyond loopback ({AddressKey} {parsedAddress}): {DashboardToken.Allowed}, "
                + $"in a file only the silo's user can read, given with --dashboard-token-file FILE ({TokenFileKey}), or as Trainer__DashboardToken; "
                + "or listen on 127.0.0.1 and forward the port (docs/dashboard.md, Security)");
        return new DashboardSettings(parsedPort, parsedAddress, parsedToken);
    }

    // The token itself, or the file holding it (which keeps it off the command line, where `ps` shows it).
    private static DashboardToken? ParseToken(string? token, string? file)
    {
        if (string.IsNullOrEmpty(file)) return string.IsNullOrEmpty(token) ? null : DashboardToken.Parse(TokenKey, token);
        if (!string.IsNullOrEmpty(token))
            throw new SpecException(TokenFileKey, file, $"allowed only without {TokenKey} (--dashboard-token, Trainer__DashboardToken): give the token one way");
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new SpecException(TokenFileKey, file,
                $"allowed: a file this silo can read holding the token{(Path.IsPathRooted(file) ? "" : $" (relative to {Environment.CurrentDirectory})")}: {e.Message.TrimEnd('.')}");
        }
        // The file's trailing newline (echo, openssl rand) is not part of the token.
        return DashboardToken.Parse($"{TokenKey} (from {TokenFileKey} {file})", text.Trim());
    }
}
