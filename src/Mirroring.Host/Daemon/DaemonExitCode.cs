using Mirroring.Dataplane.Ports.Dpdk;

namespace Mirroring.Host.Daemon;

/// <summary>Exit codes of <c>vrmirror run</c>, one per start-up failure so a supervisor (or a test) can tell them apart.</summary>
public enum DaemonExitCode
{
    /// <summary>Stopped by SIGTERM/SIGINT after a clean shutdown.</summary>
    Ok = 0,
    /// <summary>A failure while running (a worker thread failed, a port could not be opened).</summary>
    Failure = 1,
    /// <summary>Bad command line.</summary>
    Usage = 2,
    /// <summary>The configuration does not load or validate (the errors name file, line and field path).</summary>
    InvalidConfiguration = 3,
    /// <summary>CAP_NET_ADMIN (TAP devices) or CAP_NET_RAW (AF_PACKET) is missing.</summary>
    MissingPrivilege = 4,
    /// <summary>The fabric interface named in vrouter.fabric.name does not exist.</summary>
    FabricInterfaceMissing = 5,
    /// <summary>The stats region file cannot be created or written.</summary>
    StatsRegionNotWritable = 6,
    /// <summary>The state directory cannot be created or written.</summary>
    StateDirectoryNotWritable = 7,
    /// <summary>The flow store refused the agent (a PostgreSQL one is checked before the ports open): authentication, permissions, or a database that is not a flow store of this version.</summary>
    FlowStoreRefused = 8,
    /// <summary>The DPDK backend was asked for and DPDK is not installed (the shim was not built, or DPDK's libraries are missing).</summary>
    DpdkNotInstalled = 9,
    /// <summary>DPDK's EAL did not initialise (bad --dpdk-eal arguments, memory, a file prefix in use).</summary>
    DpdkEalFailed = 10,
    /// <summary>A DPDK device string does not probe, or its port does not start (queues, descriptors).</summary>
    DpdkDeviceFailed = 11,
    /// <summary><c>vrouter.flow_table.huge_pages: on</c> and the host cannot give them (none free, or the region file not on hugetlbfs).</summary>
    HugePagesUnavailable = 12,
}

public static class DaemonExitCodes
{
    /// <summary>The exit code of <c>run</c> (and <c>bench --io dpdk</c>) for a DPDK failure.</summary>
    public static DaemonExitCode For(DpdkFailure failure) => failure switch
    {
        DpdkFailure.NotInstalled => DaemonExitCode.DpdkNotInstalled,
        DpdkFailure.EalFailed => DaemonExitCode.DpdkEalFailed,
        _ => DaemonExitCode.DpdkDeviceFailed,
    };
}

/// <summary>A start-up check failed: <see cref="Exception.Message"/> is the one-line explanation.</summary>
public sealed class DaemonStartupException : Exception
{
    public DaemonStartupException(DaemonExitCode exitCode, string message, Exception? inner = null) : base(message, inner) => ExitCode = exitCode;

    public DaemonStartupException() : this(DaemonExitCode.Failure, "start-up failed") { }

    public DaemonStartupException(string message) : this(DaemonExitCode.Failure, message) { }

    public DaemonStartupException(string message, Exception innerException) : this(DaemonExitCode.Failure, message, innerException) { }

    public DaemonExitCode ExitCode { get; }
}
