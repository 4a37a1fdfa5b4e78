namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>
/// Counters of one live port. The worker that owns the port is the only writer and updates them once per
/// batch; any thread may read them (each value is read atomically, the set is not a snapshot).
/// </summary>
public sealed class PortCounters
{
    internal long RxPacketsField, RxBytesField, RxErrorsField, RxDropsField;
    internal long TxPacketsField, TxBytesField, TxErrorsField, TxDropsField;

    /// <summary>Frames delivered by Receive.</summary>
    public long RxPackets => Volatile.Read(ref RxPacketsField);
    public long RxBytes => Volatile.Read(ref RxBytesField);
    /// <summary>Reads that failed for a reason other than "nothing to read".</summary>
    public long RxErrors => Volatile.Read(ref RxErrorsField);
    /// <summary>Frames the port saw but could not deliver (larger than a receive slot).</summary>
    public long RxDrops => Volatile.Read(ref RxDropsField);
    /// <summary>Frames the kernel accepted.</summary>
    public long TxPackets => Volatile.Read(ref TxPacketsField);
    public long TxBytes => Volatile.Read(ref TxBytesField);
    /// <summary>Sends that failed for a reason other than a full queue (EMSGSIZE, ENETDOWN, ...).</summary>
    public long TxErrors => Volatile.Read(ref TxErrorsField);
    /// <summary>Sends refused because the queue was full (EAGAIN, ENOBUFS).</summary>
    public long TxDrops => Volatile.Read(ref TxDropsField);

    internal void AddRx(long packets, long bytes, long errors, long drops)
    {
        if (packets != 0) { Volatile.Write(ref RxPacketsField, RxPacketsField + packets); Volatile.Write(ref RxBytesField, RxBytesField + bytes); }
        if (errors != 0) Volatile.Write(ref RxErrorsField, RxErrorsField + errors);
        if (drops != 0) Volatile.Write(ref RxDropsField, RxDropsField + drops);
    }

    internal void AddTx(long packets, long bytes, long errors, long drops)
    {
        if (packets != 0) { Volatile.Write(ref TxPacketsField, TxPacketsField + packets); Volatile.Write(ref TxBytesField, TxBytesField + bytes); }
        if (errors != 0) Volatile.Write(ref TxErrorsField, TxErrorsField + errors);
        if (drops != 0) Volatile.Write(ref TxDropsField, TxDropsField + drops);
    }

    public override string ToString() =>
        $"rx {RxPackets} pkts {RxBytes} B, {RxErrors} errors, {RxDrops} drops; tx {TxPackets} pkts {TxBytes} B, {TxErrors} errors, {TxDrops} drops";
}
