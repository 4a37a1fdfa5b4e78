using Mirroring.Agent.Configuration.Kubernetes;

namespace Mirroring.Agent.Configuration;

/// <summary>One problem in the configuration: where (field path, file, line) and which rule.</summary>
public sealed record ConfigError(string Path, string Message, string? Source, int? Line)
{
    public override string ToString()
    {
        var where = (Source, Line) switch
        {
            (not null, not null) => $"{Source}:{Line}: ",
            (not null, null) => $"{Source}: ",
            (null, not null) => $"line {Line}: ",
            _ => "",
        };
        return Path.Length == 0 ? $"{where}{Message}" : $"{where}{Path}: {Message}";
    }
}

/// <summary>
/// The outcome of a load. <see cref="Config"/> is set only when there are no errors. A MirrorDestination
/// in Failure or Pending is not an error: it shows in <see cref="MirrorDestinations"/> and is not programmed.
/// </summary>
public sealed record ConfigLoadResult(
    VrouterConfig? Config,
    IReadOnlyList<ConfigError> Errors,
    IReadOnlyList<MirrorDestinationStatus> MirrorDestinations)
{
    public bool Succeeded => Config is not null && Errors.Count == 0;

    /// <summary>All errors, one a line.</summary>
    public string ErrorReport => string.Join(Environment.NewLine, Errors);
}
