using System.Runtime.InteropServices;
using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Training;

namespace Trainer.Grains;

/// <summary>
/// A job's initial parameters when the spec draws them (<see cref="TrainingSpec.Init"/> from
/// <see cref="TrainingSpec.Seed"/>), drawn where they are needed instead of travelling: the job's
/// first checkpoint holds no parameters (<see cref="ParameterState.Parameters"/> is null), and each
/// worker draws its own replica's. The draws are deterministic, so every worker holds the same bits
/// the single-process run starts from.
/// </summary>
/// <remarks>
/// Measured before (a 50M-parameter job on 2 silo processes): the 400 MB of initial parameters were
/// drawn, copied, serialized into the job's record, loaded into the parameter server and sent to
/// the workers, and submitting took 10 s and 55 s in two runs (the client's wall time less the job's training time).
/// </remarks>
internal static class InitialParameters
{
    /// <summary>float64, as a checkpoint or a client holds them.</summary>
    public static TensorPayload Float64(TrainingSpec spec) => Drawn<double>(spec);

    /// <summary><paramref name="state"/>'s float64 parameters: its own, or at a seeded start the drawn ones.</summary>
    public static TensorPayload Resolve(ParameterState state) => state.WithSlotsApart().Parameters ?? Float64(state.Spec);

    /// <summary>In the job's precision, as the parameter server sends parameters to the workers (narrowed as <see cref="ServerModel.Load"/> and <see cref="SplitServer.FromFloat64"/> narrow them).</summary>
    /// <remarks>float32 is drawn straight into float32 (<see cref="Initializer.Fill{T}"/>): the same bits as narrowing the float64 draws, without them.</remarks>
    public static TensorPayload InJobPrecision(TrainingSpec spec) =>
        spec.Precision == Precision.Float32 ? Drawn<float>(spec) : Drawn<double>(spec);

    /// <summary>
    /// Draws them in the job's precision into <paramref name="buffer"/> (a worker's cache, <see cref="ShardReplica.ReceiveBuffer"/>)
    /// and answers it: the same values as <see cref="InJobPrecision"/>, without a whole model's array of their own.
    /// </summary>
    public static TensorPayload DrawInto(TrainingSpec spec, TensorPayload buffer)
    {
        if (spec.Precision == Precision.Float32) DrawInto<float>(spec, buffer);
        else DrawInto<double>(spec, buffer);
        return buffer;
    }

    private static void DrawInto<T>(TrainingSpec spec, TensorPayload buffer) where T : unmanaged
    {
        var layout = ParameterLayout.For(spec.Model);
        buffer.ValuesOf<T>(layout.Count, "the buffer the initial parameters are drawn into");
        Initializer.Fill(layout, spec.Init, spec.Seed, MemoryMarshal.Cast<byte, T>(buffer.Bytes.AsSpan()));
    }

    private static TensorPayload Drawn<T>(TrainingSpec spec) where T : unmanaged
    {
        var layout = ParameterLayout.For(spec.Model);
        var payload = TensorPayload.Allocate<T>(layout.Count, out var values);
        Initializer.Fill(layout, spec.Init, spec.Seed, values);
        return payload;
    }
}
