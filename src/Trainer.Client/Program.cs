using Trainer.Client;

// An embedded silo trains under full JIT: this process is replaced before it does anything else (EmbeddedSiloJit).
if (EmbeddedSiloJit.Applies(args)) EmbeddedSiloJit.ExecWithFullJit(args);

// `trainer`: see README.md. Usage errors exit with 2, like every other bad input.
return await new Commands(Console.Out, Console.Error, outputIsTerminal: !Console.IsOutputRedirected).RunAsync(args);
