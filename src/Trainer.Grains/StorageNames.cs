namespace Trainer.Grains;

/// <summary>Names of the grain storage providers a Trainer silo registers.</summary>
public static class StorageNames
{
    /// <summary>Job records (status, losses, final weights). Memory storage by default: it lives as long as the silo that holds it.</summary>
    public const string Jobs = "trainer-jobs";
}
