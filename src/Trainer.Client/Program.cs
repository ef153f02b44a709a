using Trainer.Client;

// `trainer`: see README.md. Usage errors exit with 2, like every other bad input.
return await new Commands(Console.Out, Console.Error, outputIsTerminal: !Console.IsOutputRedirected).RunAsync(args);
