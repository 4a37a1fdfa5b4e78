namespace Mirroring.Agent.Configuration.Kubernetes;

public enum MirrorDestinationState
{
    /// <summary>The analyzer pod or its interface is not known yet; nothing is programmed.</summary>
    Pending,
    /// <summary>Mapped to an analyzer and programmed.</summary>
    Success,
    /// <summary>The spec is invalid; <see cref="MirrorDestinationStatus.Observation"/> says why. Not programmed.</summary>
    Failure,
}

/// <summary>The status of one MirrorDestination after a load (Kubernetes <c>status { state, observation }</c>).</summary>
public sealed record MirrorDestinationStatus(string Name, string Namespace, MirrorDestinationState State, string Observation);
