using System.Security.Cryptography;
using System.Text;
using Trainer.Core;

namespace Trainer.Dashboard;

/// <summary>
/// The secret a request must carry to read the dashboard (docs/dashboard.md, "Security"): as
/// `Authorization: Bearer TOKEN`, or as the cookie a browser gets by opening the page with ?token=TOKEN.
/// It is never printed: <see cref="ToString"/> hides it, and errors about it give only its length.
/// </summary>
public sealed class DashboardToken
{
    public const int MinLength = 16;

    internal const string Allowed = "a secret of at least 16 visible ASCII characters (no spaces), e.g. made with `openssl rand -hex 32`";

    // NOTE: kept and compared as SHA-256 hashes: CryptographicOperations.FixedTimeEquals answers at
    // once for inputs of different lengths, so comparing the raw strings would tell their length.
    private readonly byte[] _token, _cookie;

    private DashboardToken(string token)
    {
        _token = Hash(token);
        // The cookie holds a value derived from the token, not the token: what a browser stores
        // cannot be replayed as a Bearer token, and a new token invalidates every cookie.
        CookieValue = Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(token), "trainer-dashboard-cookie"u8));
        _cookie = Hash(CookieValue);
    }

    /// <summary>What the browser's cookie holds once it has shown the token.</summary>
    public string CookieValue { get; }

    /// <summary>The token <paramref name="token"/>, checked; a <see cref="SpecException"/> naming <paramref name="key"/> (but not the secret) otherwise.</summary>
    public static DashboardToken Parse(string key, string token)
    {
        if (token.Length < MinLength || token.Any(c => c is < '!' or > '~'))
            throw new SpecException(key, $"({token.Length} characters, not shown)", $"allowed: {Allowed}");
        return new DashboardToken(token);
    }

    /// <summary>Whether <paramref name="presented"/> is the token, in time that does not depend on where they differ.</summary>
    public bool Matches(string? presented) => presented is not null && CryptographicOperations.FixedTimeEquals(Hash(presented), _token);

    /// <summary>Whether <paramref name="presented"/> is the cookie's value, as <see cref="Matches"/>.</summary>
    public bool MatchesCookie(string? presented) => presented is not null && CryptographicOperations.FixedTimeEquals(Hash(presented), _cookie);

    public override string ToString() => "(the dashboard's token, not shown)";

    private static byte[] Hash(string text) => SHA256.HashData(Encoding.UTF8.GetBytes(text));
}
