using Trainer.Abstractions;
using Trainer.Core.Linalg;

namespace Trainer.Cluster.Tests;

/// <summary>
/// On a cluster whose silos all run one GEMM kernel (the in-memory cluster's share this process's), a job
/// keeps its submitting silo's kernel, names it in its spec, and has the single-process trainer's bits;
/// whatever a submission says of the kernel, the cluster decides it.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class JobKernelChoiceTests(ClusterFixture fixture)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AJobOnSilosOfOneKernel_RunsOnIt_WithTheSingleProcessBits_WhateverItsSubmissionSaid()
    {
        var spec = Jobs.Small(workers: 2, steps: 12);
        var (id, status, losses) = await Jobs.RunAsync(fixture.Client, Jobs.Synthetic(spec with { Gemm = "openblas 0.0.1 Imaginary" }), Token);

        Assert.Equal(Blas.Kernel(Blas.Default), status.Spec!.Gemm);
        await Jobs.AssertCompletedAsAsync(fixture.Client, id, status, losses, Jobs.Local(spec));
    }
}
