using System.Text;
using Trainer.Core.Data;

namespace Trainer.Core.Tests;

/// <summary>The .npy codec against files numpy wrote (tests/reference/npy/make_fixtures.py) and its own round trip.</summary>
public class NpyTests
{
    private static readonly double[] Values = [-0.25, -0.125, 0, 0.125, 0.25, 0.375];

    [Fact]
    public void RoundTrip_KeepsEveryBitAndTheShape()
    {
        double[] data = [1.5, -0.0, double.NaN, double.PositiveInfinity, double.Epsilon, -1e308, Math.PI, 1e-300];
        var stream = new MemoryStream();
        Npy.Write(stream, data, 2, 4);
        stream.Position = 0;
        var read = Npy.Read(stream, "memory");
        Assert.Equal([2, 4], read.Shape);
        Assert.Equal("<f8", read.Dtype);
        Assert.Equal(data.Select(BitConverter.DoubleToInt64Bits), read.Data.Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(stream.Length, stream.Position);
    }

    [Theory]
    [InlineData("f8_2x3.npy", new[] { 2, 3 })]
    [InlineData("f8_vector.npy", new[] { 6 })]
    public void Write_ProducesTheBytesNumpyWrites(string file, int[] shape)
    {
        var stream = new MemoryStream();
        Npy.Write(stream, Values, shape);
        Assert.Equal(File.ReadAllBytes(Reference.PathOf("npy", file)), stream.ToArray());
    }

    [Theory]
    [InlineData("f8_2x3.npy", new[] { 2, 3 }, "<f8")]
    [InlineData("f4_2x3.npy", new[] { 2, 3 }, "<f4")]
    [InlineData("f8_vector.npy", new[] { 6 }, "<f8")]
    [InlineData("f8_v2.npy", new[] { 2, 3 }, "<f8")]
    public void Read_NumpyWrittenFiles_GivesTheirValuesInCOrder(string file, int[] shape, string dtype)
    {
        var array = Reference.ReadNpy("npy", file);
        Assert.Equal(shape, array.Shape);
        Assert.Equal(dtype, array.Dtype);
        Assert.Equal(Values, array.Data);
    }

    [Fact]
    public void Read_Float32_WidensTheStoredFloatExactly()
    {
        var array = Reference.ReadNpy("npy", "f4_third.npy");
        Assert.Equal([(double)(1f / 3f), (double)(-2f / 3f)], array.Data);
    }

    [Fact]
    public void Read_Scalar_HasEmptyShapeAndOneValue()
    {
        var array = Reference.ReadNpy("npy", "f8_scalar.npy");
        Assert.Empty(array.Shape);
        Assert.Equal([2.5], array.Data);
    }

    [Theory]
    [InlineData("f2_2x3.npy", "dtype '<f2' is not supported")]
    [InlineData("f8_bigendian.npy", "dtype '>f8' is not supported")]
    public void Read_RejectsOtherDtypes_NamingFileAndAllowedDtypes(string file, string what)
    {
        var path = Reference.PathOf("npy", file);
        var e = Assert.Throws<NpyFormatException>(() => Reference.ReadNpy("npy", file));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(what, e.Message);
        Assert.Contains("allowed: float64 ('<f8'), float32 ('<f4'), int64 ('<i8'), int32 ('<i4') or uint8 ('|u1'), little-endian (class labels must be integers)", e.Message);
    }

    [Theory]
    [InlineData("i8_2x3.npy", new[] { 2, 3 }, "<i8", "int64", new double[] { 0, 1, 2, 3, 4, 5 })]
    [InlineData("i4_labels.npy", new[] { 4 }, "<i4", "int32", new double[] { 3, 0, 9, 1 })]
    [InlineData("u1_labels.npy", new[] { 4 }, "|u1", "uint8", new double[] { 3, 0, 9, 255 })]
    public void Read_IntegerArrays_GivesTheirValuesExactly(string file, int[] shape, string dtype, string name, double[] values)
    {
        var array = Reference.ReadNpy("npy", file);
        Assert.Equal(shape, array.Shape);
        Assert.Equal(dtype, array.Dtype);
        Assert.Equal(name, array.DtypeName);
        Assert.True(array.IsInteger);
        Assert.Equal(values, array.Data);
    }

    [Fact]
    public void Read_RefusesAnInt64BeyondTwoToThe53_WhichFloat64CannotHold()
    {
        var path = Reference.PathOf("npy", "i8_beyond_2p53.npy");
        var e = Assert.Throws<NpyFormatException>(() => Reference.ReadNpy("npy", "i8_beyond_2p53.npy"));
        Assert.Equal($"{path}: value 9007199254740993 at index 2 is beyond ±2^53, so float64 cannot hold it exactly; allowed: int64 values from -9007199254740992 to 9007199254740992.", e.Message);
    }

    [Fact]
    public void Read_RejectsFortranOrder_SayingHowToFixIt()
    {
        var path = Reference.PathOf("npy", "f8_fortran.npy");
        var e = Assert.Throws<NpyFormatException>(() => Reference.ReadNpy("npy", "f8_fortran.npy"));
        Assert.StartsWith(path + ": fortran_order is True", e.Message);
        Assert.Contains("allowed: C order only (save with np.ascontiguousarray)", e.Message);
    }

    [Fact]
    public void Read_RejectsMissingMagic()
    {
        var e = Assert.Throws<NpyFormatException>(() => Npy.Read(new MemoryStream(Encoding.ASCII.GetBytes("x,y\n1,2\n3,4\n")), "data.csv"));
        Assert.Equal("data.csv: not a .npy file (it does not start with \\x93NUMPY).", e.Message);
    }

    [Theory]
    [InlineData(4, "the magic string")]
    [InlineData(9, "the header length")]
    [InlineData(60, "the header")]
    public void Read_RejectsTruncatedFiles_SayingWhereTheyEnd(int keep, string where)
    {
        var bytes = File.ReadAllBytes(Reference.PathOf("npy", "f8_2x3.npy"))[..keep];
        var e = Assert.Throws<NpyFormatException>(() => Npy.Read(new MemoryStream(bytes), "cut.npy"));
        Assert.Equal($"cut.npy: the file ends inside {where}; it is truncated or not a .npy file.", e.Message);
    }

    [Fact]
    public void Read_RejectsUnknownVersions()
    {
        var bytes = File.ReadAllBytes(Reference.PathOf("npy", "f8_2x3.npy"));
        bytes[6] = 9;
        var e = Assert.Throws<NpyFormatException>(() => Npy.Read(new MemoryStream(bytes), "v9.npy"));
        Assert.StartsWith("v9.npy: .npy version 9.0 is not supported; allowed: 1.x, 2.x, 3.x", e.Message);
    }

    [Fact]
    public void Write_RejectsShapeThatDoesNotMatchTheData()
    {
        var e = Assert.Throws<ArgumentException>(() => Npy.Write(new MemoryStream(), Values, 4, 2));
        Assert.Contains("shape (4, 2) holds 8 values, data has 6", e.Message);
    }

    [Theory]
    [InlineData("(300000000,)")]
    [InlineData("(4294967296, 4294967296, 2)")]
    [InlineData("(2147483647, 2147483647, 2147483647)")]
    [InlineData("(65536, 65536, 65536, 65536)")]
    public void Read_RejectsArraysTooLargeToHold_NamingTheSource(string shape)
    {
        var header = $"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}\n";
        byte[] bytes = [0x93, .. "NUMPY"u8, 1, 0, (byte)header.Length, 0, .. Encoding.ASCII.GetBytes(header)];
        var e = Assert.Throws<NpyFormatException>(() => Npy.Read(new MemoryStream(bytes), "huge.npy"));
        Assert.StartsWith("huge.npy: ", e.Message);
    }

    [Theory]
    [InlineData(5, "53 bytes after the header, but its shape (2, 3) float64 needs 48; the file has trailing bytes")]
    [InlineData(-1, "47 bytes after the header, but its shape (2, 3) float64 needs 48; it is truncated")]
    [InlineData(-48, "0 bytes after the header, but its shape (2, 3) float64 needs 48; it is truncated")]
    public void Read_RejectsDataNotExactlyTheShapesSize_NamingFileAndBothSizes(int change, string expected)
    {
        var file = File.ReadAllBytes(Reference.PathOf("npy", "f8_2x3.npy"));
        byte[] bytes = change > 0 ? [.. file, .. new byte[change]] : file[..^(-change)];

        var e = Assert.Throws<NpyFormatException>(() => Npy.Read(new MemoryStream(bytes), "x.npy"));

        Assert.StartsWith($"x.npy: {expected}", e.Message);
    }

    [Theory]
    [InlineData("(100000000,)")]
    [InlineData("(16000, 16000)")]
    public void Read_RefusesAHeaderClaimingMoreThanTheFileHolds_BeforeAllocatingIt(string shape)
    {
        var header = $"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}\n";
        byte[] bytes = [0x93, .. "NUMPY"u8, 1, 0, (byte)header.Length, 0, .. Encoding.ASCII.GetBytes(header), .. new byte[16]];
        long before = GC.GetAllocatedBytesForCurrentThread();

        var e = Assert.Throws<NpyFormatException>(() => Npy.Read(new MemoryStream(bytes), "liar.npy"));

        Assert.StartsWith("liar.npy: 16 bytes after the header, but its shape ", e.Message);
        // The claim is 800 MB / 2 GB of float64; reading the header and refusing it allocates a few kilobytes.
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "the claimed data was allocated before the check");
    }

    [Theory]
    [InlineData("(2147483648, 1)", "has a dimension of 2147483648; allowed: at most 2147483647 per dimension.")]
    [InlineData("(3, -1)", "is not a tuple of non-negative integers.")]
    [InlineData("(3, x)", "is not a tuple of non-negative integers.")]
    public void Read_RefusesAShapeItCannotHold_SayingWhy(string shape, string why)
    {
        var header = $"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}\n";
        byte[] bytes = [0x93, .. "NUMPY"u8, 1, 0, (byte)header.Length, 0, .. Encoding.ASCII.GetBytes(header), .. new byte[16]];

        var e = Assert.Throws<NpyFormatException>(() => Npy.Read(new MemoryStream(bytes), "big.npy"));

        Assert.Equal($"big.npy: shape {shape} {why}", e.Message);
    }

    [Fact]
    public void Read_RefusesAHeaderLengthLongerThanTheFile()
    {
        byte[] bytes = [0x93, .. "NUMPY"u8, 2, 0, 0xFF, 0xFF, 0xFF, 0x7F, .. "{}"u8];

        var e = Assert.Throws<NpyFormatException>(() => Npy.Read(new MemoryStream(bytes), "liar.npy"));

        Assert.Equal("liar.npy: the file ends inside the header; it is truncated or not a .npy file.", e.Message);
    }

    [Fact]
    public void Read_FromAStreamThatCannotSeek_StillRefusesTrailingBytes()
    {
        var file = File.ReadAllBytes(Reference.PathOf("npy", "f8_2x3.npy"));
        Assert.Equal(6, Npy.Read(new BufferedStream(new NonSeekable(file)), "ok.npy").Data.Length);

        var e = Assert.Throws<NpyFormatException>(() => Npy.Read(new NonSeekable([.. file, 0]), "x.npy"));

        Assert.StartsWith("x.npy: 49 bytes after the header, but its shape (2, 3) float64 needs 48", e.Message);
    }

    private sealed class NonSeekable(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
