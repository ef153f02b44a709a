using Trainer.Core.Linalg;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Core.Tests;

/// <summary>
/// A job's GEMM kernel: chosen once for the whole cluster (the submitting silo's when every silo runs it,
/// else managed, else the one most silos run), named by a label that tells kernels apart, and the one every
/// product of the job runs on.
/// </summary>
public class JobKernelTests
{
    private static readonly string[] ManagedOnly = [Blas.ManagedKernel];
    private const string Haswell = "openblas 0.3.21 Haswell", SkylakeX = "openblas 0.3.21 SkylakeX";

    [Fact]
    public void EverySiloRunningTheSubmittingSilosKernel_KeepsIt() =>
        Assert.Equal(Haswell, Blas.ForJob(Haswell, [[Haswell, Blas.ManagedKernel], [Haswell, Blas.ManagedKernel]]));

    [Theory]
    [InlineData(SkylakeX)]
    [InlineData(Blas.ManagedKernel)]
    public void OneSiloWithAnotherKernel_MakesTheJobManaged(string other) =>
        Assert.Equal(Blas.ManagedKernel, Blas.ForJob(Haswell, [[Haswell, Blas.ManagedKernel], other == Blas.ManagedKernel ? ManagedOnly : [other, Blas.ManagedKernel]]));

    [Fact]
    public void AManagedSubmittingSilo_KeepsManaged_WhateverTheOthersRun() =>
        Assert.Equal(Blas.ManagedKernel, Blas.ForJob(Blas.ManagedKernel, [ManagedOnly, [Haswell, Blas.ManagedKernel]]));

    private const string Unfused = Blas.UnfusedManagedKernel;

    [Fact]
    public void SilosWithFmaAndWithout_RunNoKernelInCommon_SoTheJobTakesTheOneMostSilosRun()
    {
        // Two silos with FMA and one without: managed, on the two (placement then skips the third).
        Assert.Equal(Blas.ManagedKernel, Blas.ForJob(Unfused, [[Unfused], ManagedOnly, ManagedOnly]));
        Assert.Equal(Blas.ManagedKernel, Blas.ForJob(Blas.ManagedKernel, [ManagedOnly, [Unfused], ManagedOnly]));
        // OpenBLAS on two silos and a silo without FMA: the submitting silo's kernel, first among equals.
        Assert.Equal(Haswell, Blas.ForJob(Haswell, [[Haswell, Blas.ManagedKernel], [Haswell, Blas.ManagedKernel], [Unfused]]));
        // One each: the submitting silo's.
        Assert.Equal(Unfused, Blas.ForJob(Unfused, [[Unfused], ManagedOnly]));
        Assert.Equal(Blas.ManagedKernel, Blas.ForJob(Blas.ManagedKernel, [ManagedOnly, [Unfused]]));
        // Every silo without FMA: theirs.
        Assert.Equal(Unfused, Blas.ForJob(Haswell, [[Haswell, Unfused], [Unfused]]));
    }

    [Fact]
    public void EveryProcess_RunsItsManagedKernelAndItsOwn()
    {
        // This CPU's managed kernel: "managed" where it fuses multiply-adds (every AVX2 CPU, ARM64).
        Assert.Equal(System.Runtime.Intrinsics.X86.Fma.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? Blas.ManagedKernel : Unfused, Blas.ManagedKernelHere);
        Assert.Contains(Blas.ManagedKernelHere, Blas.Kernels);
        Assert.Contains(Blas.Kernel(Blas.Default), Blas.Kernels);
        Assert.IsType<ManagedBlas>(Blas.For(Blas.ManagedKernelHere));
        Assert.Same(Blas.Default, Blas.For(null));
        Assert.Same(Blas.Default, Blas.For(Blas.Kernel(Blas.Default)));
    }

    [Fact]
    public void AnOpenBlasKernel_IsLabelledWithItsReleaseAndCpuKernel()
    {
        var openBlas = Backends.RequireOpenBlas();
        Assert.Matches(@"^openblas \d+\.\d+\.\d+ \S+$", Blas.Kernel(openBlas));
        Assert.EndsWith($" {openBlas.CoreName}", Blas.Kernel(openBlas));
    }

    [Fact]
    public void AKernelThisProcessCannotRun_IsRefused_NamingItAndTheProcesssOwn()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Blas.For("openblas 0.0.1 Imaginary"));
        Assert.Contains("'openblas 0.0.1 Imaginary'", e.Message);
        Assert.Contains($"its own is '{Blas.Kernel(Blas.Default)}'", e.Message);
        Assert.Contains("TRAINER_BLAS=managed", e.Message);
    }

    [Fact]
    public void AJobsModel_ComputesOnItsKernel_NotTheProcesssDefault()
    {
        var spec = new TrainingSpec { Model = new ModelSpec([30, 8, 3], Activation.Tanh, LossKind.Mse, bias: true), Batch = 5, Gemm = Blas.ManagedKernelHere };
        var x = Enumerable.Range(0, 5 * 30).Select(i => Math.Sin(i * 0.37)).ToArray();
        var y = Enumerable.Range(0, 5 * 3).Select(i => Math.Cos(i * 0.11)).ToArray();
        var parameters = InitialWeights(spec);
        var onJobKernel = new double[parameters.Length];
        var onManaged = new double[parameters.Length];
        double loss = GradientModels.Create(spec).LossAndGradient(parameters, x, y, 5, onJobKernel);
        double expected = new Mlp(spec.Model, Blas.For(Blas.ManagedKernelHere)).LossAndGradient(parameters, x, y, 5, onManaged);
        Assert.Equal(expected, loss);
        Assert.Equal(onManaged, onJobKernel);
        Assert.Throws<InvalidOperationException>(() => GradientModels.Create(spec with { Gemm = "openblas 0.0.1 Imaginary" }));
    }

    private static double[] InitialWeights(TrainingSpec spec)
    {
        var random = new Random(3);
        return [.. Enumerable.Range(0, ParameterLayout.For(spec.Model).Count).Select(_ => random.NextDouble() - 0.5)];
    }
}
