using Trainer.Core.Linalg;

namespace Trainer.Core.Tests;

/// <summary>GEMM rejects bad shapes with a message saying which operand and what it needs; TRAINER_BLAS parsing.</summary>
public class GemmArgumentTests
{
    [Theory]
    [InlineData("managed")]
    [InlineData("openblas")]
    public void Gemm_RejectsNegativeDimensions_NamingThem(string backend)
    {
        var blas = Backends.ByName(backend);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => blas.Gemm(Transpose.No, Transpose.No, -1, 2, 2, 1.0, new double[4], 2, new double[4], 2, 0.0, new double[4], 2));
        Assert.Contains("m=-1, n=2, k=2", e.Message);
    }

    [Theory]
    [InlineData("managed")]
    [InlineData("openblas")]
    public void Gemm_RejectsLeadingDimensionSmallerThanColumns(string backend)
    {
        var blas = Backends.ByName(backend);
        // A is 2x3 as stored; lda 2 is too small.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => blas.Gemm(Transpose.No, Transpose.No, 2, 2, 3, 1.0, new double[6], 2, new double[6], 2, 0.0, new double[4], 2));
        Assert.Contains("Leading dimension of A is 2, must be at least 3", e.Message);
        // op(B) = Bᵀ with B stored 2x3 (n x k): ldb must be at least k = 3.
        e = Assert.Throws<ArgumentOutOfRangeException>(() => blas.Gemm(Transpose.No, Transpose.Yes, 2, 2, 3, 1.0, new double[6], 3, new double[6], 2, 0.0, new double[4], 2));
        Assert.Contains("Leading dimension of B is 2, must be at least 3", e.Message);
    }

    [Theory]
    [InlineData("managed")]
    [InlineData("openblas")]
    public void Gemm_RejectsBuffersTooShortForTheirShape(string backend)
    {
        var blas = Backends.ByName(backend);
        // C is 2x2 with ldc 3: needs (2-1)*3 + 2 = 5 elements.
        var e = Assert.Throws<ArgumentException>(() => blas.Gemm(Transpose.No, Transpose.No, 2, 2, 2, 1.0, new double[4], 2, new double[4], 2, 0.0, new double[4], 3));
        Assert.Equal("C", e.ParamName);
        Assert.Contains("C has 4 elements, a 2x2 matrix with leading dimension 3 needs 5", e.Message);
        // Aᵀ: A stored k x m = 3x2.
        var f = Assert.Throws<ArgumentException>(() => blas.Gemm(Transpose.Yes, Transpose.No, 2, 2, 3, 1f, new float[5], 2, new float[6], 2, 0f, new float[4], 2));
        Assert.Contains("A has 5 elements, a 3x2 matrix with leading dimension 2 needs 6", f.Message);
    }

    [Theory]
    [InlineData(null, BlasBackend.Auto)]
    [InlineData("", BlasBackend.Auto)]
    [InlineData("auto", BlasBackend.Auto)]
    [InlineData(" OpenBLAS ", BlasBackend.OpenBlas)]
    [InlineData("managed", BlasBackend.Managed)]
    public void Parse_AcceptsTheDocumentedNames(string? value, BlasBackend expected)
        => Assert.Equal(expected, Blas.Parse(value, Blas.EnvironmentVariable));

    [Theory]
    [InlineData("mkl")]
    [InlineData("open-blas")]
    public void Parse_RejectsUnknownBackends_NamingTheVariableAndTheChoices(string value)
    {
        var e = Assert.Throws<ArgumentException>(() => Blas.Parse(value, Blas.EnvironmentVariable));
        Assert.Contains($"TRAINER_BLAS is '{value}'", e.Message);
        Assert.Contains("allowed: auto, openblas, managed", e.Message);
    }

    [Fact]
    public void Create_GivesTheRequestedBackend()
    {
        Assert.Equal("managed", Blas.Create(BlasBackend.Managed).Name);
        Assert.Same(Backends.RequireOpenBlas(), Blas.Create(BlasBackend.OpenBlas));
        var openBlas = Backends.RequireOpenBlas();
        // Auto is OpenBLAS unless OpenBLAS fell back to its generic kernel on an AVX2/FMA CPU, or runs an
        // AVX2 kernel where the runtime has 512-bit vectors.
        if (Blas.IsGenericFallback(openBlas) || Blas.IsNarrowerThanCpu(openBlas)) Assert.IsType<ManagedBlas>(Blas.Create(BlasBackend.Auto));
        else Assert.Same(openBlas, Blas.Create(BlasBackend.Auto));
        Assert.Contains($"({openBlas.CoreName} kernel)", Blas.Describe(openBlas));
    }
}
