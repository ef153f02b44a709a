using Orleans.Serialization;
using Orleans.Storage;

namespace Trainer.Hosting;

/// <summary>
/// Grain state in Orleans' binary format, as <see cref="OrleansGrainStorageSerializer"/> writes it,
/// but serialized through a pooled buffer into one array of the exact size.
/// </summary>
/// <remarks>
/// Written by hand because Orleans' own storage serializer grows an <c>ArrayBufferWriter</c> from
/// 256 bytes: a checkpoint of the seed job's 808 KB of parameters allocated ~2 MB of large-object
/// arrays (doublings, each copied) before the store made its own copy, and every such checkpoint
/// set off a gen-2 collection (measured: 35 of them in a 3000-step job with a checkpoint every 100
/// steps). The bytes are the same; either serializer reads the other's.
/// </remarks>
public sealed class ExactSizeStorageSerializer(Serializer serializer) : IGrainStorageSerializer
{
    public BinaryData Serialize<T>(T? input) => new(serializer.SerializeToArray(input));

    public T? Deserialize<T>(BinaryData input) => serializer.Deserialize<T>(input.ToMemory());
}
