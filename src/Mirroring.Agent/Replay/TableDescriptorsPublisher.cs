using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Pipeline;

namespace Mirroring.Agent.Replay;

/// <summary>Publishes what the tables mean (names, kinds) into the stats region so operator tools can show them.</summary>
internal static class TableDescriptorsPublisher
{
    public static void Publish(VrouterDataplane dataplane, VrouterConfig config, ProgrammingResult programmed)
    {
        // Filled in once the region carries table descriptors.
        _ = (dataplane, config, programmed);
    }
}
