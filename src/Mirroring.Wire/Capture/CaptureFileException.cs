namespace Mirroring.Wire.Capture;

/// <summary>A capture file is malformed: names the file, the byte offset of the bad record and the problem.</summary>
public sealed class CaptureFileException : Exception
{
    public CaptureFileException(string fileName, long offset, string problem)
        : base($"{fileName}: at byte {offset}: {problem}")
    {
        FileName = fileName;
        Offset = offset;
        Problem = problem;
    }

    public string FileName { get; }

    /// <summary>Byte offset in the file of the record (or header) where the problem is.</summary>
    public long Offset { get; }

    public string Problem { get; }
}
