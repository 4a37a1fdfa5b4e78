using System.Runtime.InteropServices;

namespace Mirroring.Host.Ports;

/// <summary>poll(2) over several descriptors, for a worker that waits on all its ports at once.</summary>
internal static unsafe partial class NativePoll
{
    public const short POLLIN = 0x001;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    /// <summary>Waits until one descriptor is readable or the timeout passes; negative descriptors are ignored.</summary>
    public static int Wait(PollFd[] fds, int timeoutMs)
    {
        fixed (PollFd* p = fds) return Poll(p, (nuint)fds.Length, timeoutMs);
    }

    /// <summary>CLOCK_REALTIME in nanoseconds, the clock the ports stamp frames with.</summary>
    public static long RealtimeNs()
    {
        TimeSpec ts;
        ClockGetTime(0 /* CLOCK_REALTIME */, &ts);
        return ts.Seconds * 1_000_000_000L + ts.Nanoseconds;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, TimeSpec* ts);
}
