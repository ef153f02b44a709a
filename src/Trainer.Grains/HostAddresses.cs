using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Trainer.Grains;

/// <summary>Checks of the IP addresses a silo listens on or advertises, so a wrong one stops the silo at start with its name, not a job later.</summary>
public static class HostAddresses
{
    /// <summary>Whether this machine can listen on <paramref name="address"/>: one of its interfaces' addresses (any of 127/8 on Linux), or 0.0.0.0 / :: (every interface).</summary>
    public static bool CanListenOn(IPAddress address)
    {
        try
        {
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(address, 0));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Whether <paramref name="address"/> names one host others can reach: not "every interface", not broadcast or multicast.</summary>
    public static bool CanAdvertise(IPAddress address) =>
        !address.Equals(IPAddress.Any) && !address.Equals(IPAddress.IPv6Any) && !address.Equals(IPAddress.Broadcast) && !address.Equals(IPAddress.None)
        && !(address.AddressFamily == AddressFamily.InterNetworkV6 ? address.IsIPv6Multicast : (address.GetAddressBytes()[0] & 0xF0) == 0xE0);

    /// <summary>
    /// This host's address on its network, for a silo told to advertise "auto" (a container or pod, where the
    /// address is known only once it runs): the first IPv4 address, by interface index, of an interface that
    /// is up and not loopback, leaving out link-local 169.254/16; null when there is none.
    /// </summary>
    public static IPAddress? OnNetwork() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .Select(n => (Index: n.GetIPProperties().GetIPv4Properties()?.Index ?? int.MaxValue, Addresses: n.GetIPProperties().UnicastAddresses))
            .OrderBy(n => n.Index)
            .SelectMany(n => n.Addresses.Select(a => a.Address))
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a) && a.GetAddressBytes() is not [169, 254, ..]);

    /// <summary>Every interface: an address to listen on, never to advertise.</summary>
    public static bool IsAny(IPAddress address) => address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);
}
