using System.Buffers.Binary;
using System.Net;
using System.Text;

using Mirroring.Testing;

namespace Mirroring.Agent.Tests.Metrics;

/// <summary>
/// An OTLP/HTTP metrics receiver in the test process: accepts <c>POST /v1/metrics</c> (application/x-protobuf) on
/// loopback and decodes the ExportMetricsServiceRequest with a minimal protobuf reader (field numbers of
/// opentelemetry/proto/metrics/v1/metrics.proto), keeping the last value of every (metric, labels) point of Sum and
/// Gauge metrics.
/// </summary>
internal sealed class OtlpReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;
    private readonly Dictionary<(string Metric, string Labels), long> _points = [];

    public OtlpReceiver()
    {
        for (int attempt = 0; ; attempt++)
        {
            Port = FreePort.Next();
            _listener.Prefixes.Clear();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            try
            {
                _listener.Start();
                break;
            }
            catch (HttpListenerException) when (attempt < 5) { }
        }
        _loop = Task.Run(Serve);
    }

    public int Port { get; }
    public string Endpoint => $"http://127.0.0.1:{Port}";
    public int Requests { get; private set; }
    public List<string> Paths { get; } = [];

    public Dictionary<(string Metric, string Labels), long> Points
    {
        get { lock (_points) return new(_points); }
    }

    private async Task Serve()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            lock (_points)
            {
                Paths.Add($"{context.Request.HttpMethod} {context.Request.Url!.AbsolutePath} {context.Request.ContentType}");
                Decode(body.ToArray());
                Requests++;
            }
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.Close();
        }
    }

    // ExportMetricsServiceRequest: 1 resource_metrics; ResourceMetrics: 2 scope_metrics; ScopeMetrics: 2 metrics;
    // Metric: 1 name, 5 gauge, 7 sum; Gauge/Sum: 1 data_points; NumberDataPoint: 7 attributes, 4 as_double, 6 as_int;
    // KeyValue: 1 key, 2 value; AnyValue: 1 string_value, 3 int_value.
    private void Decode(byte[] request)
    {
        foreach (var resource in Fields(request, 1))
            foreach (var scope in Fields(resource, 2))
                foreach (var metric in Fields(scope, 2))
                {
                    string name = Encoding.UTF8.GetString(Fields(metric, 1).FirstOrDefault() ?? []);
                    foreach (var data in Fields(metric, 5).Concat(Fields(metric, 7)))
                        foreach (var point in Fields(data, 1))
                        {
                            var labels = Fields(point, 7).Select(kv => (Key: Encoding.UTF8.GetString(Fields(kv, 1).First()), Value: AnyValue(Fields(kv, 2).First())))
                                .OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}");
                            long value = Fixed64(point, 6) ?? (long)BitConverter.Int64BitsToDouble(Fixed64(point, 4) ?? 0);
                            _points[(name, string.Join(",", labels))] = value;
                        }
                }
    }

    private static string AnyValue(byte[] any)
    {
        foreach (var (field, _, bytes, varint) in Read(any))
        {
            if (field == 1) return Encoding.UTF8.GetString(bytes);
            if (field == 3) return varint.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return "";
    }

    private static long? Fixed64(byte[] message, int field)
    {
        foreach (var (f, wire, bytes, _) in Read(message))
            if (f == field && wire == 1) return BinaryPrimitives.ReadInt64LittleEndian(bytes);
        return null;
    }

    private static IEnumerable<byte[]> Fields(byte[] message, int field) =>
        Read(message).Where(f => f.Field == field && f.Wire == 2).Select(f => f.Bytes);

    /// <summary>The fields of a protobuf message: number, wire type, bytes (length-delimited, fixed), varint value.</summary>
    private static List<(int Field, int Wire, byte[] Bytes, long Varint)> Read(byte[] m)
    {
        var fields = new List<(int, int, byte[], long)>();
        int i = 0;
        long Varint()
        {
            long v = 0;
            for (int shift = 0; ; shift += 7)
            {
                byte b = m[i++];
                v |= (long)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return v;
            }
        }
        while (i < m.Length)
        {
            long key = Varint();
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: fields.Add((field, wire, [], Varint())); break;
                case 1: fields.Add((field, wire, m[i..(i + 8)], 0)); i += 8; break;
                case 2:
                    int length = (int)Varint();
                    fields.Add((field, wire, m[i..(i + length)], 0));
                    i += length;
                    break;
                case 5: fields.Add((field, wire, m[i..(i + 4)], 0)); i += 4; break;
                default: throw new InvalidDataException($"protobuf wire type {wire} at byte {i}");
            }
        }
        return fields;
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        try { _loop.Wait(5000); } catch (AggregateException) { }
    }
}
