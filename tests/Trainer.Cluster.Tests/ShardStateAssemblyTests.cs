using Trainer.Abstractions;
using Trainer.Core.Models;
using Trainer.Core.Optim;
using Trainer.Core.Training;
using Trainer.Grains;

namespace Trainer.Cluster.Tests;

/// <summary>
/// A sharded parameter server puts its model state together from its shards' own buffers chunk by
/// chunk, as the chunks arrive, with no array per shard: every chunk, wherever it is cut (mid-slot,
/// across two of a shard's slots), lands where the whole model state's layout has it (the parameters,
/// and each optimizer-state slot in a tensor of its own), widened from the job's precision.
/// </summary>
public class ShardStateAssemblyTests
{
    [Theory]
    [InlineData(Precision.Float64, 8)]
    [InlineData(Precision.Float64, 24)]
    [InlineData(Precision.Float64, int.MaxValue)]
    [InlineData(Precision.Float32, 4)]
    [InlineData(Precision.Float32, 36)]
    [InlineData(Precision.Float32, int.MaxValue)]
    public void EveryShardsChunks_LandWhereTheWholeModelStateHasThem(Precision precision, int chunkBytes)
    {
        var (model, count, slots) = ShardedServer(precision);
        // Values the job's precision holds exactly, all different.
        var expected = Enumerable.Range(0, (1 + slots) * count).Select(i => (double)(float)(1 + i * 0.37)).ToArray();

        var assembled = ServerModel.AllocateState(count, slots);
        for (int k = 0; k < model.Ranges.Count; k++)
        {
            var range = model.Ranges[k];
            // What shard k offers: its range of the parameters; its range of each slot, one after another.
            var parameters = Payload(precision, expected.AsSpan(range.Start, range.Count).ToArray());
            var state = Payload(precision, [.. Enumerable.Range(1, slots).SelectMany(slot => expected.AsSpan(slot * count + range.Start, range.Count).ToArray())]);
            foreach (var chunk in TensorChunk.Split(parameters, chunkBytes)) model.PlaceState(ServerModel.Into(assembled), k, slots: false, chunk);
            foreach (var chunk in TensorChunk.Split(state, chunkBytes)) model.PlaceState(ServerModel.Into(assembled), k, slots: true, chunk);
        }

        Assert.Equal(1 + slots, assembled.Tensors.Count());
        Assert.Equal(expected, assembled.Tensors.SelectMany(tensor => tensor.ToArray()));
    }

    [Fact]
    public void AShardsStateOfTheOtherPrecision_IsRefused_NamingTheShard()
    {
        var (model, _, _) = ShardedServer(Precision.Float64);
        var range = model.Ranges[1];
        var float32 = TensorPayload.From(new float[range.Count]);

        var error = Assert.Throws<InvalidOperationException>(() => model.PlaceState(_ => new double[50], 1, slots: false, TensorChunk.Split(float32, int.MaxValue).Single()));

        Assert.Contains("parameter-server shard 1's parameters", error.Message);
        Assert.Contains("do both ends agree on the job's precision?", error.Message);
    }

    /// <summary>A parameter server of a 50-parameter Adam job over 3 shards (ranges of 17, 17 and 16 values).</summary>
    private static (ServerModel Model, int Count, int Slots) ShardedServer(Precision precision)
    {
        var spec = new TrainingSpec
        {
            Model = new ModelSpec([7, 5, 3]), Workers = 1, Precision = precision, ParameterServerShards = 3,
            Optimizer = new OptimizerSpec { Kind = OptimizerKind.Adam },
        };
        var plan = ExchangePlan.For(spec);
        var model = ServerModel.Create(spec, plan, Compute);
        Assert.Equal(50, plan.Layout.Count);
        Assert.Equal(3, model.Ranges.Count);
        return (model, plan.Layout.Count, spec.Optimizer.StateSlots);
    }

    private static readonly ComputeScheduler Compute = new(1);

    private static TensorPayload Payload(Precision precision, double[] values) =>
        precision == Precision.Float32 ? TensorPayload.From(Precisions.Narrow(values)) : TensorPayload.From(values);
}
