using Mirroring.Dataplane.Stats;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>
/// A worker's counter deltas for the batch in progress. Per-packet code adds here (plain array adds);
/// <see cref="FlushTo"/> writes them to the stats region once per batch and per touched entry.
/// </summary>
internal sealed class BatchCounters
{
    private readonly InterfaceCounters[] _interfaces;
    private readonly bool[] _interfaceTouched;
    private readonly ushort[] _touchedInterfaces;
    private int _touchedInterfaceCount;

    private readonly long[] _drops = new long[StatsLayout.DropCounterSlots];
    private readonly long[] _mirrorPackets = new long[256];
    private readonly long[] _mirrorOriginalBytes = new long[256];
    private readonly long[] _mirrorSentBytes = new long[256];
    private readonly long[,] _mirrorFailures = new long[256, MirrorFailures.Count];
    private readonly bool[] _mirrorTouched = new bool[256];
    private readonly byte[] _touchedMirrors = new byte[256];
    private int _touchedMirrorCount;

    public BatchCounters(int maxInterfaces)
    {
        _interfaces = new InterfaceCounters[maxInterfaces];
        _interfaceTouched = new bool[maxInterfaces];
        _touchedInterfaces = new ushort[maxInterfaces];
    }

    public ref InterfaceCounters Interface(int vif)
    {
        if (!_interfaceTouched[vif])
        {
            _interfaceTouched[vif] = true;
            _touchedInterfaces[_touchedInterfaceCount++] = (ushort)vif;
        }
        return ref _interfaces[vif];
    }

    public bool IsValidInterface(int vif) => (uint)vif < (uint)_interfaces.Length;

    public void Drop(DropReason reason) => _drops[(int)reason]++;

    public void Mirrored(byte index, int originalBytes, int sentBytes)
    {
        TouchMirror(index);
        _mirrorPackets[index]++;
        _mirrorOriginalBytes[index] += originalBytes;
        _mirrorSentBytes[index] += sentBytes;
    }

    public void MirrorFailed(byte index, MirrorFailure failure)
    {
        TouchMirror(index);
        _mirrorFailures[index, (int)failure]++;
    }

    private void TouchMirror(byte index)
    {
        if (_mirrorTouched[index]) return;
        _mirrorTouched[index] = true;
        _touchedMirrors[_touchedMirrorCount++] = index;
    }

    public void FlushTo(in WorkerCounters counters)
    {
        for (int i = 0; i < _touchedInterfaceCount; i++)
        {
            int vif = _touchedInterfaces[i];
            counters.AddInterface(vif, in _interfaces[vif]);
            _interfaces[vif] = default;
            _interfaceTouched[vif] = false;
        }
        _touchedInterfaceCount = 0;

        for (int r = 0; r < _drops.Length; r++)
        {
            if (_drops[r] == 0) continue;
            counters.AddDrop((DropReason)r, _drops[r]);
            _drops[r] = 0;
        }

        for (int i = 0; i < _touchedMirrorCount; i++)
        {
            byte m = _touchedMirrors[i];
            if (_mirrorPackets[m] != 0)
                counters.AddMirror(m, _mirrorPackets[m], _mirrorOriginalBytes[m], _mirrorSentBytes[m]);
            for (int f = 0; f < MirrorFailures.Count; f++)
            {
                if (_mirrorFailures[m, f] == 0) continue;
                counters.AddMirrorFailure(m, (MirrorFailure)f, _mirrorFailures[m, f]);
                _mirrorFailures[m, f] = 0;
            }
            _mirrorPackets[m] = _mirrorOriginalBytes[m] = _mirrorSentBytes[m] = 0;
            _mirrorTouched[m] = false;
        }
        _touchedMirrorCount = 0;
    }
}
