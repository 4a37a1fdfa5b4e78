using System.Runtime.InteropServices;

namespace Mirroring.Dataplane.Ports.Dpdk;

/// <summary>
/// The DPDK shim (native/dpdk-shim, libvrmirror_dpdk.so next to this assembly), loaded once with
/// <see cref="NativeLibrary"/> and called through function pointers. Only <see cref="DpdkEal"/>,
/// <see cref="DpdkPool"/> and <see cref="DpdkPort"/> call these.
/// </summary>
internal static unsafe class DpdkNative
{
    public const string LibraryFileName = "libvrmirror_dpdk.so";
    public const int AbiVersion = 2;

    private static readonly object Gate = new();
    private static bool _loaded;
    private static string? _loadProblem;

    public static delegate* unmanaged<int> VrmAbiVersion;
    public static delegate* unmanaged<MbufLayout*, void> VrmMbufLayout;
    public static delegate* unmanaged<int, byte**, int> VrmEalInit;
    public static delegate* unmanaged<int> VrmEalCleanup;
    public static delegate* unmanaged<byte*, nuint, nuint> VrmLogRead;
    public static delegate* unmanaged<int> VrmThreadRegister;
    public static delegate* unmanaged<void> VrmThreadUnregister;
    public static delegate* unmanaged<uint, ushort, uint, nuint> VrmPoolAreaSize;
    public static delegate* unmanaged<byte*, void*, nuint, uint, ushort, uint, nint*, PoolInfo*, int> VrmPoolCreate;
    public static delegate* unmanaged<nint, void> VrmPoolFree;
    public static delegate* unmanaged<nint, uint> VrmPoolAvailable;
    public static delegate* unmanaged<byte*, ushort*, int> VrmPortProbe;
    public static delegate* unmanaged<ushort, PortInfo*, int> VrmPortInfo;
    public static delegate* unmanaged<ushort, ushort, ushort, ushort, ushort, nint*, int, int> VrmPortStart;
    public static delegate* unmanaged<ushort, int> VrmPortClose;
    public static delegate* unmanaged<ushort, PortStats*, int> VrmPortStats;
    public static delegate* unmanaged<ushort, int> VrmPortLinkUp;
    public static delegate* unmanaged<ushort, ushort, nint*, ushort, ushort> VrmRxBurst;
    public static delegate* unmanaged<ushort, ushort, nint*, ushort, ushort> VrmTxBurst;
    public static delegate* unmanaged<nint, nint*, uint, int> VrmMbufAllocBulk;
    public static delegate* unmanaged<nint*, uint, void> VrmMbufFreeBulk;

    /// <summary>The mbuf field offsets of the DPDK build the shim was compiled against.</summary>
    public static MbufLayout Layout;

    /// <summary>Where the shim is looked for.</summary>
    public static string LibraryPath => Path.Combine(AppContext.BaseDirectory, LibraryFileName) is var beside && File.Exists(beside)
        ? beside
        : Path.Combine(Path.GetDirectoryName(typeof(DpdkNative).Assembly.Location) ?? AppContext.BaseDirectory, LibraryFileName);

    /// <summary>Loads the shim once; null when it is usable, otherwise why not ("DPDK not installed: ...").</summary>
    public static string? TryLoad()
    {
        lock (Gate)
        {
            if (_loaded) return null;
            if (_loadProblem is not null) return _loadProblem;
            _loadProblem = Load();
            _loaded = _loadProblem is null;
            return _loadProblem;
        }
    }

    private static string? Load()
    {
        var path = LibraryPath;
        if (!File.Exists(path))
            return $"DPDK not installed: {path} was not built (the build skips the DPDK shim when libdpdk-dev or gcc is missing: apt-get install libdpdk-dev gcc, then rebuild)";
        if (!NativeLibrary.TryLoad(path, out var handle))
            return $"DPDK not installed: {path} cannot be loaded, DPDK's libraries are missing (apt-get install dpdk)";
        try
        {
            VrmAbiVersion = (delegate* unmanaged<int>)NativeLibrary.GetExport(handle, "vrm_abi_version");
            int abi = VrmAbiVersion();
            if (abi != AbiVersion)
                return $"DPDK shim {path} has ABI version {abi}, this build needs {AbiVersion}: rebuild";
            VrmMbufLayout = (delegate* unmanaged<MbufLayout*, void>)NativeLibrary.GetExport(handle, "vrm_mbuf_layout");
            VrmEalInit = (delegate* unmanaged<int, byte**, int>)NativeLibrary.GetExport(handle, "vrm_eal_init");
            VrmEalCleanup = (delegate* unmanaged<int>)NativeLibrary.GetExport(handle, "vrm_eal_cleanup");
            VrmLogRead = (delegate* unmanaged<byte*, nuint, nuint>)NativeLibrary.GetExport(handle, "vrm_log_read");
            VrmThreadRegister = (delegate* unmanaged<int>)NativeLibrary.GetExport(handle, "vrm_thread_register");
            VrmThreadUnregister = (delegate* unmanaged<void>)NativeLibrary.GetExport(handle, "vrm_thread_unregister");
            VrmPoolAreaSize = (delegate* unmanaged<uint, ushort, uint, nuint>)NativeLibrary.GetExport(handle, "vrm_pool_area_size");
            VrmPoolCreate = (delegate* unmanaged<byte*, void*, nuint, uint, ushort, uint, nint*, PoolInfo*, int>)NativeLibrary.GetExport(handle, "vrm_pool_create");
            VrmPoolFree = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(handle, "vrm_pool_free");
            VrmPoolAvailable = (delegate* unmanaged<nint, uint>)NativeLibrary.GetExport(handle, "vrm_pool_available");
            VrmPortProbe = (delegate* unmanaged<byte*, ushort*, int>)NativeLibrary.GetExport(handle, "vrm_port_probe");
            VrmPortInfo = (delegate* unmanaged<ushort, PortInfo*, int>)NativeLibrary.GetExport(handle, "vrm_port_info");
            VrmPortStart = (delegate* unmanaged<ushort, ushort, ushort, ushort, ushort, nint*, int, int>)NativeLibrary.GetExport(handle, "vrm_port_start");
            VrmPortClose = (delegate* unmanaged<ushort, int>)NativeLibrary.GetExport(handle, "vrm_port_close");
            VrmPortStats = (delegate* unmanaged<ushort, PortStats*, int>)NativeLibrary.GetExport(handle, "vrm_port_stats");
            VrmPortLinkUp = (delegate* unmanaged<ushort, int>)NativeLibrary.GetExport(handle, "vrm_port_link_up");
            VrmRxBurst = (delegate* unmanaged<ushort, ushort, nint*, ushort, ushort>)NativeLibrary.GetExport(handle, "vrm_rx_burst");
            VrmTxBurst = (delegate* unmanaged<ushort, ushort, nint*, ushort, ushort>)NativeLibrary.GetExport(handle, "vrm_tx_burst");
            VrmMbufAllocBulk = (delegate* unmanaged<nint, nint*, uint, int>)NativeLibrary.GetExport(handle, "vrm_mbuf_alloc_bulk");
            VrmMbufFreeBulk = (delegate* unmanaged<nint*, uint, void>)NativeLibrary.GetExport(handle, "vrm_mbuf_free_bulk");
            MbufLayout layout;
            VrmMbufLayout(&layout);
            if (layout.AbiVersion != AbiVersion) return $"DPDK shim {path}: mbuf layout of ABI {layout.AbiVersion}, expected {AbiVersion}";
            Layout = layout;
            return null;
        }
        catch (EntryPointNotFoundException e)
        {
            return $"DPDK shim {path} is incomplete ({e.Message}): rebuild";
        }
    }

    /// <summary>Drains what DPDK logged since the last call (its log goes to a buffer in the shim, not to stdout).</summary>
    public static string ReadLog()
    {
        if (!_loaded) return "";
        var buffer = new byte[16384];
        fixed (byte* p = buffer)
        {
            nuint n = VrmLogRead(p, (nuint)buffer.Length);
            return System.Text.Encoding.UTF8.GetString(buffer, 0, (int)n);
        }
    }

    /// <summary>A NUL-terminated UTF-8 copy of <paramref name="text"/> for a native call.</summary>
    public static byte[] Utf8z(string text)
    {
        var bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(text) + 1];
        System.Text.Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }

    public static string ErrorText(int negativeErrno) => negativeErrno switch
    {
        < 0 => $"{Marshal.GetPInvokeErrorMessage(-negativeErrno)} (errno {-negativeErrno})",
        _ => $"error {negativeErrno}",
    };

    [StructLayout(LayoutKind.Sequential)]
    public struct MbufLayout
    {
        public uint AbiVersion;
        public uint MbufSize;
        public ushort Headroom;
        public ushort BufAddr;
        public ushort DataOff;
        public ushort RefCnt;
        public ushort NbSegs;
        public ushort Port;
        public ushort OlFlags;
        public ushort PktLen;
        public ushort DataLen;
        public ushort BufLen;
        public ushort Next;
        public ushort Pool;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PoolInfo
    {
        public ulong FirstMbuf;
        public uint Stride;
        public uint Count;
        public ushort DataRoom;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PortInfo
    {
        public fixed byte Driver[32];
        public fixed byte Name[64];
        public ushort MaxRxQueues;
        public ushort MaxTxQueues;
        public uint MaxRxPacketLength;
        public fixed byte Mac[6];
        public ushort SocketId;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PortStats
    {
        public ulong InPackets, OutPackets, InBytes, OutBytes, InMissed, InErrors, OutErrors, RxNoMbuf;
    }
}
