using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Trainer.Core;

namespace Trainer.Dashboard;

/// <summary>
/// Where a silo serves its web dashboard, read from configuration: <see cref="PortKey"/>
/// (trainer-silo --dashboard-port; 0, the default, serves none) and <see cref="AddressKey"/>
/// (--dashboard-address; default 127.0.0.1). NOTE: the dashboard has no authentication, so it
/// listens on loopback unless told otherwise; whoever reaches the address can read every job.
/// </summary>
public sealed record DashboardSettings(int Port, IPAddress Address)
{
    public const string PortKey = "Trainer:DashboardPort";
    public const string AddressKey = "Trainer:DashboardAddress";

    public static readonly DashboardSettings Off = new(0, IPAddress.Loopback);

    public bool Enabled => Port != 0;

    /// <summary>The page's address, e.g. http://127.0.0.1:8080/.</summary>
    public string Url => Address.AddressFamily == AddressFamily.InterNetworkV6 ? $"http://[{Address}]:{Port}/" : $"http://{Address}:{Port}/";

    /// <summary>The settings in <paramref name="configuration"/>; throws <see cref="SpecException"/> naming the key, the value and what is allowed.</summary>
    public static DashboardSettings From(IConfiguration configuration) => Parse(configuration[PortKey], configuration[AddressKey]);

    public static DashboardSettings Parse(string? port, string? address)
    {
        int parsedPort = 0;
        if (!string.IsNullOrWhiteSpace(port)
            && (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out parsedPort) || parsedPort > IPEndPoint.MaxPort))
            throw new SpecException(PortKey, port, "allowed: a TCP port from 1 to 65535, or 0 for no dashboard, e.g. --dashboard-port 8080");
        var parsedAddress = IPAddress.Loopback;
        if (!string.IsNullOrWhiteSpace(address) && !IPAddress.TryParse(address, out parsedAddress!))
            throw new SpecException(AddressKey, address,
                "allowed: an IP address of this machine, e.g. 127.0.0.1 (the default: this machine only) or 0.0.0.0 (every interface; the dashboard has no authentication)");
        return new DashboardSettings(parsedPort, parsedAddress);
    }
}
