using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Trainer.Process.Tests;

/// <summary>
/// The container image (deploy/container) under podman, as a user runs it: its CLI alone, and silos in
/// containers of their own, each with its own address on a bridge network, on Redis membership, one
/// started as `docker run` would (the image's defaults) and one with the silo command and environment of
/// the Kubernetes manifest (deploy/kubernetes/trainer.yaml), and a client as its seed Job (seed-job.yaml)
/// runs. Every run here is the seed job, checked to the last bit against the same job on this machine's own
/// build (<see cref="HostRunAsync"/>): its final loss, and every step's loss up to a kill.
/// </summary>
[Collection(RealProcessCollection.Name)]
public sealed class ContainerTests
{
    /// <summary>
    /// The host's settings that choose the matrix-product kernels (TRAINER_BLAS, OpenBLAS's core type, .NET's
    /// instruction sets), passed on by name: the image's CLI then runs the host's kernels, so the bits are the
    /// host's. Another kernel sums in another order (docs/performance.md).
    /// </summary>
    private static readonly string[] Kernels =
    [
        .. Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Where(k => k.StartsWith("OPENBLAS_", StringComparison.Ordinal) || k.StartsWith("DOTNET_Enable", StringComparison.Ordinal) || k == "TRAINER_BLAS")
            .Order(StringComparer.Ordinal)
            .SelectMany(k => new[] { "-e", k }),
    ];

    [Fact]
    public async Task TheImagesCli_TrainsTheSeedJobOnItsEmbeddedSilo_ToTheSeedsFinalLoss_AndTheSiloCommandExplainsItself()
    {
        using var processes = new ChildProcesses();
        var image = await ContainerImage.BuildAsync(processes);

        var expected = await HostRunAsync(processes, new Dictionary<string, string>());

        var train = await image.RunAsync(processes, ["run", "--rm", "--network", "none", .. Kernels, ContainerImage.Tag, "trainer", "train", "--json", "--verbose"], TimeSpan.FromMinutes(3));

        Assert.True(train.Code == 0, train.ToString());
        // The image's OpenBLAS is found; whether it runs depends on the CPU (docs/configuration.md, "GEMM backend").
        Assert.Matches(@"trainer: GEMM backend (openblas \(|managed \(OpenBLAS is installed)", train.Err);
        var completed = TrainJson.FinalEvent(train.Out);
        Assert.Equal("completed", completed.GetProperty("event").GetString());
        Assert.Equal(expected.FinalLoss, completed.GetProperty("final_loss").GetDouble());
        Assert.Equal(expected.Losses, TrainJson.StepLosses(train.Out));
        var help = await image.RunAsync(processes, ["run", "--rm", "--network", "none", ContainerImage.Tag, "trainer-silo", "--help"], TimeSpan.FromMinutes(1));
        Assert.True(help.Code == 0, help.ToString());
        Assert.Contains("--advertise ADDRESS", help.Out);
        // The CLI's command given to the silo by mistake (the image's default command is trainer-silo).
        var stray = await image.RunAsync(processes, ["run", "--rm", "--network", "none", ContainerImage.Tag, "trainer-silo", "list"], TimeSpan.FromMinutes(1));
        Assert.True(stray.Code == 2, stray.ToString());
        Assert.Contains("trainer-silo: error: argument 'list' is not allowed", stray.Err);
    }

    [Fact]
    public async Task SilosInContainers_OnRedis_OneAsKubernetesStartsIt_OneAsOnAnAvx2Node_TrainTheSeedJob_ThroughASigkillOfTheJobsSilo_ToItsBits_AndTheLastStopsCleanly()
    {
        using var processes = new ChildProcesses();
        var image = await ContainerImage.BuildAsync(processes);
        // The manifest's silos run the managed kernels (TRAINER_BLAS) so that nodes with different CPUs give the same
        // bits: the first silo runs them on 256-bit vectors, as on an AVX2 node (DOTNET_EnableAVX512=0; no change on
        // an AVX2 machine), the second as the manifest says on this CPU, and the reference on the host.
        var managed = new Dictionary<string, string> { ["TRAINER_BLAS"] = "managed" };
        var avx2Node = new Dictionary<string, string>(managed) { ["DOTNET_EnableAVX512"] = "0" };
        var expected = await HostRunAsync(processes, managed);
        await using var redis = await Trainer.Cluster.Tests.RedisServer.StartAsync(everyInterface: true);
        string suffix = $"{Environment.ProcessId}-{Random.Shared.Next(1000)}";
        string network = $"trainer-test-{suffix}", first = $"trainer-test-a-{suffix}", second = $"trainer-test-b-{suffix}";
        // A network of its own (podman picks a free subnet), so the silos can be given their addresses the way pods are.
        var created = await image.RunAsync(processes, ["network", "create", network], TimeSpan.FromMinutes(1));
        Assert.True(created.Code == 0, created.ToString());
        try
        {
            var inspected = await image.RunAsync(processes, ["network", "inspect", "--format", "{{range .Subnets}}{{.Subnet}} {{.Gateway}}{{end}}", network], TimeSpan.FromMinutes(1));
            var match = Regex.Match(inspected.Out, @"^(\d+\.\d+\.\d+)\.0/24 (\S+)");
            Assert.True(match.Success, inspected.ToString());
            // Containers reach the host's redis-server (on every interface) at their network's gateway.
            string subnet = match.Groups[1].Value, redisAt = $"{match.Groups[2].Value}:{redis.Port}";
            // The first silo as `docker run IMAGE trainer-silo --clustering redis --redis ...` starts it: it advertises
            // the address it finds (the image's Silo__AdvertisedAddress=auto). It starts first, so it is the oldest
            // silo and takes the job grain.
            var a = await image.RunAsync(processes, ["run", "-d", "--name", first, "--network", network, "--ip", $"{subnet}.10", .. Variables(avx2Node),
                ContainerImage.Tag, "trainer-silo", "--clustering", "redis", "--redis", redisAt], TimeSpan.FromMinutes(1));
            Assert.True(a.Code == 0, a.ToString());
            await ReadyAsync(image, processes, first);
            Assert.Contains($"Silo ready: gateway {subnet}.10:30000", await LogsAsync(image, processes, first));

            // The second with the manifest's silo environment: the pod's IP for status.podIP, the test's Redis for the Service.
            var silo = ManifestEnvironment("trainer.yaml", "Deployment", "trainer-silo", podIp: $"{subnet}.11", redis: redisAt);
            Assert.Equal(redisAt, silo["Silo__Redis"]);
            Assert.Equal("managed", silo["TRAINER_BLAS"]);
            var b = await image.RunAsync(processes, ["run", "-d", "--name", second, "--network", network, "--ip", $"{subnet}.11",
                .. Variables(silo), ContainerImage.Tag, .. ManifestCommand("trainer.yaml", "Deployment", "trainer-silo")], TimeSpan.FromMinutes(1));
            Assert.True(b.Code == 0, b.ToString());
            await ReadyAsync(image, processes, second);
            Assert.Contains($"Silo ready: gateway {subnet}.11:30000", await LogsAsync(image, processes, second));

            // The client as seed-job.yaml runs it, finding the gateways in Redis, with checkpoints. The first silo
            // gets SIGKILL mid-job (its machine died); the job resumes from its checkpoint in Redis on the second.
            var client = ManifestEnvironment("seed-job.yaml", "Job", "trainer-seed", podIp: null, redis: redisAt);
            Assert.Equal($"redis://{redisAt}", client["TRAINER_GATEWAY"]);
            int killedAt = 0;
            Task<ProcessResult>? kill = null;
            void KillOnce(string line)
            {
                if (killedAt != 0 || !line.StartsWith("{\"event\":\"step\"", StringComparison.Ordinal)) return;
                int step = JsonDocument.Parse(line).RootElement.GetProperty("step").GetInt32();
                if (step < 100) return;
                killedAt = step;
                kill = image.RunAsync(processes, ["kill", "--signal", "KILL", first], TimeSpan.FromMinutes(1));
            }
            var train = await image.RunAsync(processes, ["run", "--rm", "--network", network, .. Variables(client), ContainerImage.Tag,
                .. ManifestCommand("seed-job.yaml", "Job", "trainer-seed"), "--checkpoint-every", "50", "--checkpoint-min-seconds", "0"],
                TimeSpan.FromMinutes(5), KillOnce);

            Assert.True(killedAt > 0, $"no step >= 100 was printed, so nothing was killed\n{train}");
            var killed = await kill!;
            Assert.True(killed.Code == 0, killed.ToString());
            Assert.True(train.Code == 0, $"the job did not survive the SIGKILL of {first} at step {killedAt}\n{train}\n--- {second} ---\n{await LogsAsync(image, processes, second)}");
            var completed = TrainJson.FinalEvent(train.Out);
            Assert.Equal(3000, completed.GetProperty("steps").GetInt32());
            Assert.Equal(expected.FinalLoss, completed.GetProperty("final_loss").GetDouble());
            // Every step up to the kill on both silos, to the bit: a silo whose kernels gave other bits would show here
            // (the final loss alone may not: the seed job's last steps contract small differences of its first ones away).
            var printed = TrainJson.FirstLossOfEachStep(train.Out);
            Assert.Equal(expected.Losses.Take(killedAt), Enumerable.Range(1, killedAt).Select(step => printed[step]));
            // The job grain lived on the killed silo (placed on the oldest): the second took the job over.
            Assert.Matches(@"Job job-\w+ resumes from its checkpoint at step \d+", await LogsAsync(image, processes, second));

            // Kubernetes stops a pod with SIGTERM: the silo leaves the cluster and exits 0 within the grace period.
            var stop = await image.RunAsync(processes, ["stop", "--time", "60", second], TimeSpan.FromMinutes(2));
            Assert.True(stop.Code == 0, stop.ToString());
            var exit = await image.RunAsync(processes, ["inspect", "--format", "{{.State.ExitCode}}", second], TimeSpan.FromMinutes(1));
            Assert.Equal("0", exit.Out.Trim());
            Assert.Contains("Silo stopped after", await LogsAsync(image, processes, second));
        }
        finally
        {
            await image.RunAsync(processes, ["rm", "--force", "--time", "0", first, second], TimeSpan.FromMinutes(1));
            await image.RunAsync(processes, ["network", "rm", "--force", network], TimeSpan.FromMinutes(1));
        }
    }

    /// <summary>The seed job on this checkout's own `trainer train`, on an embedded silo: its final loss and every step's loss.</summary>
    private static async Task<(double FinalLoss, double[] Losses)> HostRunAsync(ChildProcesses processes, Dictionary<string, string> environment)
    {
        var run = await processes.RunAsync("dotnet", [Repo.TrainerDll, "train", "--json"], environment, TimeSpan.FromMinutes(3));
        Assert.True(run.Code == 0, run.ToString());
        return (TrainJson.FinalEvent(run.Out).GetProperty("final_loss").GetDouble(), TrainJson.StepLosses(run.Out));
    }

    /// <summary>
    /// The environment of a container of <paramref name="kind"/> <paramref name="name"/> in deploy/kubernetes/<paramref name="file"/>,
    /// with the pod's IP for status.podIP and the test's Redis for the Redis Service's name.
    /// </summary>
    private static Dictionary<string, string> ManifestEnvironment(string file, string kind, string name, string? podIp, string redis)
    {
        var environment = new Dictionary<string, string>();
        foreach (YamlMappingNode variable in (YamlSequenceNode)ManifestContainer(file, kind, name)["env"])
        {
            string key = Scalar(variable, "name");
            if (variable.Children.TryGetValue(new YamlScalarNode("valueFrom"), out var from))
            {
                Assert.Equal("status.podIP", Scalar((YamlMappingNode)((YamlMappingNode)from)["fieldRef"], "fieldPath"));
                environment[key] = podIp ?? throw new InvalidOperationException($"{file}: {name} asks for its pod's IP");
            }
            else
            {
                environment[key] = Scalar(variable, "value").Replace("trainer-redis:6379", redis, StringComparison.Ordinal);
            }
        }
        return environment;
    }

    /// <summary>The command of a container of <paramref name="kind"/> <paramref name="name"/> in deploy/kubernetes/<paramref name="file"/>.</summary>
    private static string[] ManifestCommand(string file, string kind, string name) =>
        [.. ((YamlSequenceNode)ManifestContainer(file, kind, name)["command"]).Select(n => ((YamlScalarNode)n).Value!)];

    /// <summary>The one container of the pod template of <paramref name="kind"/> <paramref name="name"/>.</summary>
    private static YamlMappingNode ManifestContainer(string file, string kind, string name)
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(Path.Combine(Repo.Root, "deploy", "kubernetes", file)))
            yaml.Load(reader);
        var owner = yaml.Documents.Select(d => (YamlMappingNode)d.RootNode)
            .Single(d => Scalar(d, "kind") == kind && Scalar((YamlMappingNode)d["metadata"], "name") == name);
        var containers = (YamlSequenceNode)((YamlMappingNode)((YamlMappingNode)((YamlMappingNode)owner["spec"])["template"])["spec"])["containers"];
        return (YamlMappingNode)containers.Single();
    }

    private static IEnumerable<string> Variables(Dictionary<string, string> environment) =>
        environment.SelectMany(e => new[] { "-e", $"{e.Key}={e.Value}" });

    private static string Scalar(YamlMappingNode node, string key) => ((YamlScalarNode)node[key]).Value!;

    private static async Task<string> LogsAsync(ContainerImage image, ChildProcesses processes, string container)
    {
        var logs = await image.RunAsync(processes, ["logs", container], TimeSpan.FromMinutes(1));
        return logs.Out + logs.Err;
    }

    /// <summary>Until the silo logs "Silo ready" (it joined the cluster); fails with its log if it stops first.</summary>
    private static async Task ReadyAsync(ContainerImage image, ChildProcesses processes, string container)
    {
        var log = await Poll.UntilAsync(() => LogsAsync(image, processes, container),
            log => log.Contains("Silo ready") || log.Contains("trainer-silo: error") || log.Contains("Unhandled exception"), TimeSpan.FromMinutes(2), log => log);
        Assert.True(log.Contains("Silo ready"), log);
    }
}
