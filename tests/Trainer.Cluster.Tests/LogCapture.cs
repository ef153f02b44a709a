using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Trainer.Cluster.Tests;

/// <summary>
/// Keeps every Trainer log line of <paramref name="minimum"/> level or above, formatted, followed by
/// the exception logged with it (type, message, stack), if any: tests read which path a silo took.
/// </summary>
internal sealed class LogCapture(LogLevel minimum = LogLevel.Warning) : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyCollection<string> Lines => _lines;

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName.StartsWith("Trainer", StringComparison.Ordinal) ? _lines : null, minimum);

    public void Dispose() { }

    private sealed class Logger(ConcurrentQueue<string>? lines, LogLevel minimum) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => lines is not null && logLevel >= minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) lines!.Enqueue(exception is null ? formatter(state, exception) : $"{formatter(state, exception)}\n{exception}");
        }
    }
}
