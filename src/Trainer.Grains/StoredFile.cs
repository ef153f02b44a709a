using System.Buffers;
using System.IO.Compression;
using System.IO.MemoryMappedFiles;
using Trainer.Core;
using Trainer.Core.Data;

namespace Trainer.Grains;

/// <summary>
/// One data file, opened: its header's facts and its values' bytes, read in place from a mapping of
/// the file (uncompressed) or from one decompressed copy in memory (.gz). Immutable but for who holds it.
/// </summary>
public sealed class StoredFile : IDisposable
{
    private readonly IDisposable? _mapping;

    private StoredFile(string path, StoredFileKind kind, long size, DateTime modified, StoredType type, int[] shape, ReadOnlyMemory<byte> values, IDisposable? mapping)
    {
        (Path, Kind, Size, Modified, Type, Shape, Values, _mapping) = (path, kind, size, modified, type, shape, values, mapping);
        FullPath = System.IO.Path.GetFullPath(path);
    }

    /// <summary>The path as the reader that opened the file gave it (messages name it so).</summary>
    public string Path { get; }

    /// <summary>The path made absolute when the file was opened: what <see cref="StoredFiles"/> knows it by.</summary>
    public string FullPath { get; }
    public StoredFileKind Kind { get; }
    public long Size { get; }
    public DateTime Modified { get; }
    public StoredType Type { get; }
    public int[] Shape { get; }
    /// <summary>The values' bytes, after the header.</summary>
    public ReadOnlyMemory<byte> Values { get; }
    /// <summary>Whether the values are read from a memory-mapped file (else from a decompressed copy).</summary>
    public bool Mapped => _mapping is not null;

    internal int Holders { get; set; }

    /// <summary>The values as an array the readers convert (IDX images: each byte through <paramref name="byteValues"/>).</summary>
    public StoredArray Array(double[]? byteValues = null) => new(Values, Type, Shape, byteValues);

    public void Dispose() => _mapping?.Dispose();

    /// <summary>Opens and checks the file's header; refusals name the file (and <paramref name="where"/>).</summary>
    internal static StoredFile Open(string path, StoredFileKind kind, FileInfo info, string where, string readOn)
    {
        try
        {
            if (kind != StoredFileKind.Npy && path.EndsWith(".gz", StringComparison.Ordinal)) return Decompressed(path, kind, info);
            return MappedFile(path, kind, info);
        }
        catch (FormatException e)
        {
            throw new SpecException("data", path, e.Message.TrimEnd('.') + readOn);
        }
        catch (InvalidDataException e)
        {
            // GZipStream's own refusal of a file that is not gzip (or is cut short inside it).
            throw new SpecException("data", path, $"{path}: not a readable gzip file ({e.Message.TrimEnd('.')}){where}; a .gz name means gzip-compressed");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SpecException("data", path, $"{path} cannot be read{where}: {e.Message.TrimEnd('.')}");
        }
    }

    private static StoredFile Decompressed(string path, StoredFileKind kind, FileInfo info)
    {
        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        var array = kind == StoredFileKind.IdxImages ? Idx.ReadImages(gzip, path) : Idx.ReadLabels(gzip, path);
        return new StoredFile(path, kind, info.Length, info.LastWriteTimeUtc, StoredType.UInt8, array.Shape, array.Data, null);
    }

    private static unsafe StoredFile MappedFile(string path, StoredFileKind kind, FileInfo info)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long length = stream.Length;
        // NOTE: an empty file cannot be mapped; its header check names it as cut short.
        if (length == 0)
        {
            stream.Dispose();
            Header(new MemoryStream(), path, kind);
        }
        if (length > int.MaxValue)
        {
            stream.Dispose();
            throw new SpecException("data", path, $"{path} holds {length} bytes; at most {int.MaxValue} can be read");
        }
        var mapping = new Mapping(stream, length);
        try
        {
            // The header is read from the mapping itself, so it and the values are of the same bytes.
            var (type, shape, offset) = Header(new UnmanagedMemoryStream(mapping.Pointer, length), path, kind);
            return new StoredFile(path, kind, length, info.LastWriteTimeUtc, type, shape, mapping.Memory.Slice((int)offset), mapping);
        }
        catch
        {
            ((IDisposable)mapping).Dispose();
            throw;
        }
    }

    private static (StoredType Type, int[] Shape, long Offset) Header(Stream stream, string path, StoredFileKind kind)
    {
        if (kind == StoredFileKind.Npy)
        {
            var npy = Npy.ReadHeader(stream, path);
            return (StoredArray.TypeOf(npy.Descr)!.Value, npy.Shape, npy.DataOffset);
        }
        var idx = Idx.ReadHeader(stream, path, images: kind == StoredFileKind.IdxImages);
        return (StoredType.UInt8, idx.Shape, idx.DataOffset);
    }

    /// <summary>A read-only memory mapping of a whole file, as memory the stored arrays read.</summary>
    private sealed unsafe class Mapping : MemoryManager<byte>
    {
        private readonly MemoryMappedFile _file;
        private readonly MemoryMappedViewAccessor _view;
        private readonly int _length;
        private bool _disposed;

        public Mapping(FileStream stream, long length)
        {
            _file = MemoryMappedFile.CreateFromFile(stream, null, length, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            _view = _file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            Pointer = pointer + _view.PointerOffset;
            _length = (int)length;
        }

        public byte* Pointer { get; }

        public override Span<byte> GetSpan()
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return new Span<byte>(Pointer, _length);
        }

        public override MemoryHandle Pin(int elementIndex = 0) => new(Pointer + elementIndex);

        public override void Unpin() { }

        protected override void Dispose(bool disposing)
        {
            if (_disposed) return;
            _disposed = true;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _file.Dispose();
        }
    }
}
