using System.Runtime.CompilerServices;
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
    private readonly MirrorCounters[] _mirrors = new MirrorCounters[256];
    private readonly bool[] _mirrorTouched = new bool[256];
    private readonly byte[] _touchedMirrors = new byte[256];
    private int _touchedMirrorCount;

    public BatchCounters(int maxInterfaces)
    {
        _interfaces = new InterfaceCounters[maxInterfaces];
        _interfaceTouched = new bool[maxInterfaces];
        _touchedInterfaces = new ushort[maxInterfaces];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
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
        ref MirrorCounters m = ref _mirrors[index];
        m.Packets++;
        m.OriginalBytes += (ulong)originalBytes;
        m.SentBytes += (ulong)sentBytes;
    }

    public void MirrorFailed(byte index, MirrorFailure failure)
    {
        TouchMirror(index);
        _mirrors[index].Failures[(int)failure]++;
    }

    public void SampledOut(byte index)
    {
        TouchMirror(index);
        _mirrors[index].SampledOut++;
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
            counters.AddMirrorCounts(m, in _mirrors[m]);
            _mirrors[m] = default;
            _mirrorTouched[m] = false;
        }
        _touchedMirrorCount = 0;
    }
}
