namespace Mirroring.Dataplane.Ports.Dpdk;

/// <summary>What went wrong with the DPDK backend; each maps to its own exit code of <c>vrmirror run</c>.</summary>
public enum DpdkFailure
{
    /// <summary>The shim was not built (no libdpdk-dev at build time) or DPDK's libraries are missing.</summary>
    NotInstalled,
    /// <summary>rte_eal_init failed (bad EAL arguments, no memory, another process holds the file prefix).</summary>
    EalFailed,
    /// <summary>A device string does not probe (unknown driver, bad key, missing file or interface).</summary>
    BadDevargs,
    /// <summary>A probed port cannot be configured or started (queues, descriptors, memory).</summary>
    PortFailed,
}

/// <summary>A DPDK control-plane failure; <see cref="Exception.Message"/> is one line naming the cause.</summary>
public sealed class DpdkException : Exception
{
    public DpdkException(DpdkFailure failure, string message, Exception? inner = null) : base(message, inner) => Failure = failure;

    public DpdkException() : this(DpdkFailure.PortFailed, "DPDK failure") { }

    public DpdkException(string message) : this(DpdkFailure.PortFailed, message) { }

    public DpdkException(string message, Exception innerException) : this(DpdkFailure.PortFailed, message, innerException) { }

    public DpdkFailure Failure { get; }
}
