namespace Trainer.Core.Data;

/// <summary>
/// A value in the data that cannot be trained on (a label outside the classes, a NaN or an infinity,
/// a target row that is not a distribution); the message names the source, the row and the value.
/// </summary>
public sealed class DataValueException(string message) : FormatException(message);
